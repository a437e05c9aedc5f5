# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_fleetctl_global_optspecs
    string join \n config= output= v/verbose q/quiet h/help V/version
end

function __fish_fleetctl_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_fleetctl_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_fleetctl_using_subcommand
    set -l cmd (__fish_fleetctl_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c fleetctl -n "__fish_fleetctl_needs_command" -l config -d 'Config file [default: ./fleet.yaml if present, else the embedded standalone default]' -r -F
complete -c fleetctl -n "__fish_fleetctl_needs_command" -l output -d 'Output format; with json, stdout carries only JSON and messages go to stderr' -r -f -a "table\t'Human-readable tables'
json\t'Machine-readable JSON on stdout'"
complete -c fleetctl -n "__fish_fleetctl_needs_command" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace)'
complete -c fleetctl -n "__fish_fleetctl_needs_command" -s q -l quiet -d 'Only errors on stderr; no progress bars'
complete -c fleetctl -n "__fish_fleetctl_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c fleetctl -n "__fish_fleetctl_needs_command" -s V -l version -d 'Print version'
complete -c fleetctl -n "__fish_fleetctl_needs_command" -f -a "serve" -d 'Run a server node: agent API, fleet API, dashboard and cluster endpoints'
complete -c fleetctl -n "__fish_fleetctl_needs_command" -f -a "cluster" -d 'Inspect the cluster as a whole'
complete -c fleetctl -n "__fish_fleetctl_needs_command" -f -a "nodes" -d 'List, drain, undrain or remove cluster nodes'
complete -c fleetctl -n "__fish_fleetctl_needs_command" -f -a "sessions" -d 'Garbage-collect, list and revoke login sessions'
complete -c fleetctl -n "__fish_fleetctl_needs_command" -f -a "config" -d 'Validate, create or print the config file'
complete -c fleetctl -n "__fish_fleetctl_needs_command" -f -a "lb" -d 'Generate load-balancer configs for the cluster'
complete -c fleetctl -n "__fish_fleetctl_needs_command" -f -a "users" -d 'Manage dashboard users'
complete -c fleetctl -n "__fish_fleetctl_needs_command" -f -a "keys" -d 'Manage agent API keys'
complete -c fleetctl -n "__fish_fleetctl_needs_command" -f -a "migrate" -d 'Copy sessions, API key usage and fleet data to the backends of another config'
complete -c fleetctl -n "__fish_fleetctl_needs_command" -f -a "agent" -d 'Collect this host\'s metrics and report them to the fleet server'
complete -c fleetctl -n "__fish_fleetctl_needs_command" -f -a "completions" -d 'Print a shell completion script'
complete -c fleetctl -n "__fish_fleetctl_needs_command" -f -a "man" -d 'Write man pages, one per subcommand'
complete -c fleetctl -n "__fish_fleetctl_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand serve" -l host -d 'Address to listen on, overriding `server.host`' -r
complete -c fleetctl -n "__fish_fleetctl_using_subcommand serve" -l port -d 'Port to listen on, overriding `server.port` (0 picks a free port)' -r
complete -c fleetctl -n "__fish_fleetctl_using_subcommand serve" -l node-id -d 'Node id, overriding `cluster.node_id` [default: <hostname>-<6 random chars>]' -r
complete -c fleetctl -n "__fish_fleetctl_using_subcommand serve" -l config -d 'Config file [default: ./fleet.yaml if present, else the embedded standalone default]' -r -F
complete -c fleetctl -n "__fish_fleetctl_using_subcommand serve" -l output -d 'Output format; with json, stdout carries only JSON and messages go to stderr' -r -f -a "table\t'Human-readable tables'
json\t'Machine-readable JSON on stdout'"
complete -c fleetctl -n "__fish_fleetctl_using_subcommand serve" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace)'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand serve" -s q -l quiet -d 'Only errors on stderr; no progress bars'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand serve" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand serve" -s V -l version -d 'Print version'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand cluster; and not __fish_seen_subcommand_from status help" -l config -d 'Config file [default: ./fleet.yaml if present, else the embedded standalone default]' -r -F
complete -c fleetctl -n "__fish_fleetctl_using_subcommand cluster; and not __fish_seen_subcommand_from status help" -l output -d 'Output format; with json, stdout carries only JSON and messages go to stderr' -r -f -a "table\t'Human-readable tables'
json\t'Machine-readable JSON on stdout'"
complete -c fleetctl -n "__fish_fleetctl_using_subcommand cluster; and not __fish_seen_subcommand_from status help" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace)'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand cluster; and not __fish_seen_subcommand_from status help" -s q -l quiet -d 'Only errors on stderr; no progress bars'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand cluster; and not __fish_seen_subcommand_from status help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand cluster; and not __fish_seen_subcommand_from status help" -s V -l version -d 'Print version'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand cluster; and not __fish_seen_subcommand_from status help" -f -a "status" -d 'Show every node, its state, the leader and the backend\'s health'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand cluster; and not __fish_seen_subcommand_from status help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand cluster; and __fish_seen_subcommand_from status" -l server -d 'Ask this node over HTTP instead of reading the backend named in the config' -r
complete -c fleetctl -n "__fish_fleetctl_using_subcommand cluster; and __fish_seen_subcommand_from status" -l token -d 'Admin API token for --server' -r
complete -c fleetctl -n "__fish_fleetctl_using_subcommand cluster; and __fish_seen_subcommand_from status" -l ca-file -d 'Trust only the CA certificates in this PEM file for an https:// --server' -r -F
complete -c fleetctl -n "__fish_fleetctl_using_subcommand cluster; and __fish_seen_subcommand_from status" -l min-active -d 'Exit 3 when fewer than N nodes are active' -r
complete -c fleetctl -n "__fish_fleetctl_using_subcommand cluster; and __fish_seen_subcommand_from status" -l interval -d 'Seconds between redraws with --watch' -r
complete -c fleetctl -n "__fish_fleetctl_using_subcommand cluster; and __fish_seen_subcommand_from status" -l format -d 'Print a monitoring-plugin status line and exit 0/1/2/3 (OK/WARNING/CRITICAL/UNKNOWN)' -r -f -a "nagios\t'Nagios/Icinga/Sensu plugin output and exit codes'"
complete -c fleetctl -n "__fish_fleetctl_using_subcommand cluster; and __fish_seen_subcommand_from status" -l warning -d 'With --format nagios: WARNING when the active nodes fall outside this range; N means "at least N" (N:) [default: every node that has not left]' -r
complete -c fleetctl -n "__fish_fleetctl_using_subcommand cluster; and __fish_seen_subcommand_from status" -l critical -d 'With --format nagios: CRITICAL when the active nodes fall outside this range [default: 1]' -r
complete -c fleetctl -n "__fish_fleetctl_using_subcommand cluster; and __fish_seen_subcommand_from status" -l config -d 'Config file [default: ./fleet.yaml if present, else the embedded standalone default]' -r -F
complete -c fleetctl -n "__fish_fleetctl_using_subcommand cluster; and __fish_seen_subcommand_from status" -l output -d 'Output format; with json, stdout carries only JSON and messages go to stderr' -r -f -a "table\t'Human-readable tables'
json\t'Machine-readable JSON on stdout'"
complete -c fleetctl -n "__fish_fleetctl_using_subcommand cluster; and __fish_seen_subcommand_from status" -l watch -d 'Redraw the status every few seconds until interrupted'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand cluster; and __fish_seen_subcommand_from status" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace)'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand cluster; and __fish_seen_subcommand_from status" -s q -l quiet -d 'Only errors on stderr; no progress bars'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand cluster; and __fish_seen_subcommand_from status" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand cluster; and __fish_seen_subcommand_from status" -s V -l version -d 'Print version'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand cluster; and __fish_seen_subcommand_from help" -f -a "status" -d 'Show every node, its state, the leader and the backend\'s health'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand cluster; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand nodes; and not __fish_seen_subcommand_from list drain undrain remove help" -l config -d 'Config file [default: ./fleet.yaml if present, else the embedded standalone default]' -r -F
complete -c fleetctl -n "__fish_fleetctl_using_subcommand nodes; and not __fish_seen_subcommand_from list drain undrain remove help" -l output -d 'Output format; with json, stdout carries only JSON and messages go to stderr' -r -f -a "table\t'Human-readable tables'
json\t'Machine-readable JSON on stdout'"
complete -c fleetctl -n "__fish_fleetctl_using_subcommand nodes; and not __fish_seen_subcommand_from list drain undrain remove help" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace)'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand nodes; and not __fish_seen_subcommand_from list drain undrain remove help" -s q -l quiet -d 'Only errors on stderr; no progress bars'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand nodes; and not __fish_seen_subcommand_from list drain undrain remove help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand nodes; and not __fish_seen_subcommand_from list drain undrain remove help" -s V -l version -d 'Print version'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand nodes; and not __fish_seen_subcommand_from list drain undrain remove help" -f -a "list" -d 'List the registered nodes with their state and last heartbeat'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand nodes; and not __fish_seen_subcommand_from list drain undrain remove help" -f -a "drain" -d 'Put a node into draining: its health check fails so load balancers stop sending work'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand nodes; and not __fish_seen_subcommand_from list drain undrain remove help" -f -a "undrain" -d 'Take a node out of draining'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand nodes; and not __fish_seen_subcommand_from list drain undrain remove help" -f -a "remove" -d 'Forget a node in the registry (refuses an active node without --force)'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand nodes; and not __fish_seen_subcommand_from list drain undrain remove help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand nodes; and __fish_seen_subcommand_from list" -l server -d 'Ask this node over HTTP instead of reading the backend named in the config' -r
complete -c fleetctl -n "__fish_fleetctl_using_subcommand nodes; and __fish_seen_subcommand_from list" -l token -d 'Admin API token for --server' -r
complete -c fleetctl -n "__fish_fleetctl_using_subcommand nodes; and __fish_seen_subcommand_from list" -l ca-file -d 'Trust only the CA certificates in this PEM file for an https:// --server' -r -F
complete -c fleetctl -n "__fish_fleetctl_using_subcommand nodes; and __fish_seen_subcommand_from list" -l config -d 'Config file [default: ./fleet.yaml if present, else the embedded standalone default]' -r -F
complete -c fleetctl -n "__fish_fleetctl_using_subcommand nodes; and __fish_seen_subcommand_from list" -l output -d 'Output format; with json, stdout carries only JSON and messages go to stderr' -r -f -a "table\t'Human-readable tables'
json\t'Machine-readable JSON on stdout'"
complete -c fleetctl -n "__fish_fleetctl_using_subcommand nodes; and __fish_seen_subcommand_from list" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace)'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand nodes; and __fish_seen_subcommand_from list" -s q -l quiet -d 'Only errors on stderr; no progress bars'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand nodes; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand nodes; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand nodes; and __fish_seen_subcommand_from drain" -l server -d 'Ask this node over HTTP instead of reading the backend named in the config' -r
complete -c fleetctl -n "__fish_fleetctl_using_subcommand nodes; and __fish_seen_subcommand_from drain" -l token -d 'Admin API token for --server' -r
complete -c fleetctl -n "__fish_fleetctl_using_subcommand nodes; and __fish_seen_subcommand_from drain" -l ca-file -d 'Trust only the CA certificates in this PEM file for an https:// --server' -r -F
complete -c fleetctl -n "__fish_fleetctl_using_subcommand nodes; and __fish_seen_subcommand_from drain" -l config -d 'Config file [default: ./fleet.yaml if present, else the embedded standalone default]' -r -F
complete -c fleetctl -n "__fish_fleetctl_using_subcommand nodes; and __fish_seen_subcommand_from drain" -l output -d 'Output format; with json, stdout carries only JSON and messages go to stderr' -r -f -a "table\t'Human-readable tables'
json\t'Machine-readable JSON on stdout'"
complete -c fleetctl -n "__fish_fleetctl_using_subcommand nodes; and __fish_seen_subcommand_from drain" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace)'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand nodes; and __fish_seen_subcommand_from drain" -s q -l quiet -d 'Only errors on stderr; no progress bars'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand nodes; and __fish_seen_subcommand_from drain" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand nodes; and __fish_seen_subcommand_from drain" -s V -l version -d 'Print version'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand nodes; and __fish_seen_subcommand_from undrain" -l server -d 'Ask this node over HTTP instead of reading the backend named in the config' -r
complete -c fleetctl -n "__fish_fleetctl_using_subcommand nodes; and __fish_seen_subcommand_from undrain" -l token -d 'Admin API token for --server' -r
complete -c fleetctl -n "__fish_fleetctl_using_subcommand nodes; and __fish_seen_subcommand_from undrain" -l ca-file -d 'Trust only the CA certificates in this PEM file for an https:// --server' -r -F
complete -c fleetctl -n "__fish_fleetctl_using_subcommand nodes; and __fish_seen_subcommand_from undrain" -l config -d 'Config file [default: ./fleet.yaml if present, else the embedded standalone default]' -r -F
complete -c fleetctl -n "__fish_fleetctl_using_subcommand nodes; and __fish_seen_subcommand_from undrain" -l output -d 'Output format; with json, stdout carries only JSON and messages go to stderr' -r -f -a "table\t'Human-readable tables'
json\t'Machine-readable JSON on stdout'"
complete -c fleetctl -n "__fish_fleetctl_using_subcommand nodes; and __fish_seen_subcommand_from undrain" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace)'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand nodes; and __fish_seen_subcommand_from undrain" -s q -l quiet -d 'Only errors on stderr; no progress bars'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand nodes; and __fish_seen_subcommand_from undrain" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand nodes; and __fish_seen_subcommand_from undrain" -s V -l version -d 'Print version'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand nodes; and __fish_seen_subcommand_from remove" -l server -d 'Ask this node over HTTP instead of reading the backend named in the config' -r
complete -c fleetctl -n "__fish_fleetctl_using_subcommand nodes; and __fish_seen_subcommand_from remove" -l token -d 'Admin API token for --server' -r
complete -c fleetctl -n "__fish_fleetctl_using_subcommand nodes; and __fish_seen_subcommand_from remove" -l ca-file -d 'Trust only the CA certificates in this PEM file for an https:// --server' -r -F
complete -c fleetctl -n "__fish_fleetctl_using_subcommand nodes; and __fish_seen_subcommand_from remove" -l config -d 'Config file [default: ./fleet.yaml if present, else the embedded standalone default]' -r -F
complete -c fleetctl -n "__fish_fleetctl_using_subcommand nodes; and __fish_seen_subcommand_from remove" -l output -d 'Output format; with json, stdout carries only JSON and messages go to stderr' -r -f -a "table\t'Human-readable tables'
json\t'Machine-readable JSON on stdout'"
complete -c fleetctl -n "__fish_fleetctl_using_subcommand nodes; and __fish_seen_subcommand_from remove" -l force -d 'Remove the node even if it is still active'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand nodes; and __fish_seen_subcommand_from remove" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace)'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand nodes; and __fish_seen_subcommand_from remove" -s q -l quiet -d 'Only errors on stderr; no progress bars'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand nodes; and __fish_seen_subcommand_from remove" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand nodes; and __fish_seen_subcommand_from remove" -s V -l version -d 'Print version'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand nodes; and __fish_seen_subcommand_from help" -f -a "list" -d 'List the registered nodes with their state and last heartbeat'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand nodes; and __fish_seen_subcommand_from help" -f -a "drain" -d 'Put a node into draining: its health check fails so load balancers stop sending work'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand nodes; and __fish_seen_subcommand_from help" -f -a "undrain" -d 'Take a node out of draining'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand nodes; and __fish_seen_subcommand_from help" -f -a "remove" -d 'Forget a node in the registry (refuses an active node without --force)'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand nodes; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand sessions; and not __fish_seen_subcommand_from gc list revoke help" -l config -d 'Config file [default: ./fleet.yaml if present, else the embedded standalone default]' -r -F
complete -c fleetctl -n "__fish_fleetctl_using_subcommand sessions; and not __fish_seen_subcommand_from gc list revoke help" -l output -d 'Output format; with json, stdout carries only JSON and messages go to stderr' -r -f -a "table\t'Human-readable tables'
json\t'Machine-readable JSON on stdout'"
complete -c fleetctl -n "__fish_fleetctl_using_subcommand sessions; and not __fish_seen_subcommand_from gc list revoke help" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace)'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand sessions; and not __fish_seen_subcommand_from gc list revoke help" -s q -l quiet -d 'Only errors on stderr; no progress bars'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand sessions; and not __fish_seen_subcommand_from gc list revoke help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand sessions; and not __fish_seen_subcommand_from gc list revoke help" -s V -l version -d 'Print version'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand sessions; and not __fish_seen_subcommand_from gc list revoke help" -f -a "gc" -d 'Delete expired sessions (SQLite and file stores; Redis expires them itself)'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand sessions; and not __fish_seen_subcommand_from gc list revoke help" -f -a "list" -d 'List live sessions'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand sessions; and not __fish_seen_subcommand_from gc list revoke help" -f -a "revoke" -d 'End sessions on every node at once'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand sessions; and not __fish_seen_subcommand_from gc list revoke help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand sessions; and __fish_seen_subcommand_from gc" -l config -d 'Config file [default: ./fleet.yaml if present, else the embedded standalone default]' -r -F
complete -c fleetctl -n "__fish_fleetctl_using_subcommand sessions; and __fish_seen_subcommand_from gc" -l output -d 'Output format; with json, stdout carries only JSON and messages go to stderr' -r -f -a "table\t'Human-readable tables'
json\t'Machine-readable JSON on stdout'"
complete -c fleetctl -n "__fish_fleetctl_using_subcommand sessions; and __fish_seen_subcommand_from gc" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace)'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand sessions; and __fish_seen_subcommand_from gc" -s q -l quiet -d 'Only errors on stderr; no progress bars'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand sessions; and __fish_seen_subcommand_from gc" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand sessions; and __fish_seen_subcommand_from gc" -s V -l version -d 'Print version'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand sessions; and __fish_seen_subcommand_from list" -l user -d 'Only this user\'s sessions' -r
complete -c fleetctl -n "__fish_fleetctl_using_subcommand sessions; and __fish_seen_subcommand_from list" -l config -d 'Config file [default: ./fleet.yaml if present, else the embedded standalone default]' -r -F
complete -c fleetctl -n "__fish_fleetctl_using_subcommand sessions; and __fish_seen_subcommand_from list" -l output -d 'Output format; with json, stdout carries only JSON and messages go to stderr' -r -f -a "table\t'Human-readable tables'
json\t'Machine-readable JSON on stdout'"
complete -c fleetctl -n "__fish_fleetctl_using_subcommand sessions; and __fish_seen_subcommand_from list" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace)'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand sessions; and __fish_seen_subcommand_from list" -s q -l quiet -d 'Only errors on stderr; no progress bars'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand sessions; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand sessions; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand sessions; and __fish_seen_subcommand_from revoke" -l user -d 'Revoke every session of this user' -r
complete -c fleetctl -n "__fish_fleetctl_using_subcommand sessions; and __fish_seen_subcommand_from revoke" -l config -d 'Config file [default: ./fleet.yaml if present, else the embedded standalone default]' -r -F
complete -c fleetctl -n "__fish_fleetctl_using_subcommand sessions; and __fish_seen_subcommand_from revoke" -l output -d 'Output format; with json, stdout carries only JSON and messages go to stderr' -r -f -a "table\t'Human-readable tables'
json\t'Machine-readable JSON on stdout'"
complete -c fleetctl -n "__fish_fleetctl_using_subcommand sessions; and __fish_seen_subcommand_from revoke" -l all -d 'Revoke every session of every user'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand sessions; and __fish_seen_subcommand_from revoke" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace)'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand sessions; and __fish_seen_subcommand_from revoke" -s q -l quiet -d 'Only errors on stderr; no progress bars'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand sessions; and __fish_seen_subcommand_from revoke" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand sessions; and __fish_seen_subcommand_from revoke" -s V -l version -d 'Print version'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand sessions; and __fish_seen_subcommand_from help" -f -a "gc" -d 'Delete expired sessions (SQLite and file stores; Redis expires them itself)'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand sessions; and __fish_seen_subcommand_from help" -f -a "list" -d 'List live sessions'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand sessions; and __fish_seen_subcommand_from help" -f -a "revoke" -d 'End sessions on every node at once'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand sessions; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand config; and not __fish_seen_subcommand_from validate init show help" -l config -d 'Config file [default: ./fleet.yaml if present, else the embedded standalone default]' -r -F
complete -c fleetctl -n "__fish_fleetctl_using_subcommand config; and not __fish_seen_subcommand_from validate init show help" -l output -d 'Output format; with json, stdout carries only JSON and messages go to stderr' -r -f -a "table\t'Human-readable tables'
json\t'Machine-readable JSON on stdout'"
complete -c fleetctl -n "__fish_fleetctl_using_subcommand config; and not __fish_seen_subcommand_from validate init show help" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace)'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand config; and not __fish_seen_subcommand_from validate init show help" -s q -l quiet -d 'Only errors on stderr; no progress bars'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand config; and not __fish_seen_subcommand_from validate init show help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand config; and not __fish_seen_subcommand_from validate init show help" -s V -l version -d 'Print version'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand config; and not __fish_seen_subcommand_from validate init show help" -f -a "validate" -d 'Check a config file and report every problem with file:line:column'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand config; and not __fish_seen_subcommand_from validate init show help" -f -a "init" -d 'Write a new config file by answering a few questions'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand config; and not __fish_seen_subcommand_from validate init show help" -f -a "show" -d 'Print the effective config (file, defaults and environment), secrets redacted'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand config; and not __fish_seen_subcommand_from validate init show help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand config; and __fish_seen_subcommand_from validate" -l config -d 'Config file [default: ./fleet.yaml if present, else the embedded standalone default]' -r -F
complete -c fleetctl -n "__fish_fleetctl_using_subcommand config; and __fish_seen_subcommand_from validate" -l output -d 'Output format; with json, stdout carries only JSON and messages go to stderr' -r -f -a "table\t'Human-readable tables'
json\t'Machine-readable JSON on stdout'"
complete -c fleetctl -n "__fish_fleetctl_using_subcommand config; and __fish_seen_subcommand_from validate" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace)'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand config; and __fish_seen_subcommand_from validate" -s q -l quiet -d 'Only errors on stderr; no progress bars'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand config; and __fish_seen_subcommand_from validate" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand config; and __fish_seen_subcommand_from validate" -s V -l version -d 'Print version'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand config; and __fish_seen_subcommand_from init" -l config -d 'Config file [default: ./fleet.yaml if present, else the embedded standalone default]' -r -F
complete -c fleetctl -n "__fish_fleetctl_using_subcommand config; and __fish_seen_subcommand_from init" -l output -d 'Output format; with json, stdout carries only JSON and messages go to stderr' -r -f -a "table\t'Human-readable tables'
json\t'Machine-readable JSON on stdout'"
complete -c fleetctl -n "__fish_fleetctl_using_subcommand config; and __fish_seen_subcommand_from init" -l force -d 'Overwrite the file if it exists'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand config; and __fish_seen_subcommand_from init" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace)'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand config; and __fish_seen_subcommand_from init" -s q -l quiet -d 'Only errors on stderr; no progress bars'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand config; and __fish_seen_subcommand_from init" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand config; and __fish_seen_subcommand_from init" -s V -l version -d 'Print version'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand config; and __fish_seen_subcommand_from show" -l config -d 'Config file [default: ./fleet.yaml if present, else the embedded standalone default]' -r -F
complete -c fleetctl -n "__fish_fleetctl_using_subcommand config; and __fish_seen_subcommand_from show" -l output -d 'Output format; with json, stdout carries only JSON and messages go to stderr' -r -f -a "table\t'Human-readable tables'
json\t'Machine-readable JSON on stdout'"
complete -c fleetctl -n "__fish_fleetctl_using_subcommand config; and __fish_seen_subcommand_from show" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace)'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand config; and __fish_seen_subcommand_from show" -s q -l quiet -d 'Only errors on stderr; no progress bars'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand config; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand config; and __fish_seen_subcommand_from show" -s V -l version -d 'Print version'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "validate" -d 'Check a config file and report every problem with file:line:column'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "init" -d 'Write a new config file by answering a few questions'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "show" -d 'Print the effective config (file, defaults and environment), secrets redacted'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand lb; and not __fish_seen_subcommand_from gen-haproxy gen-nginx help" -l config -d 'Config file [default: ./fleet.yaml if present, else the embedded standalone default]' -r -F
complete -c fleetctl -n "__fish_fleetctl_using_subcommand lb; and not __fish_seen_subcommand_from gen-haproxy gen-nginx help" -l output -d 'Output format; with json, stdout carries only JSON and messages go to stderr' -r -f -a "table\t'Human-readable tables'
json\t'Machine-readable JSON on stdout'"
complete -c fleetctl -n "__fish_fleetctl_using_subcommand lb; and not __fish_seen_subcommand_from gen-haproxy gen-nginx help" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace)'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand lb; and not __fish_seen_subcommand_from gen-haproxy gen-nginx help" -s q -l quiet -d 'Only errors on stderr; no progress bars'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand lb; and not __fish_seen_subcommand_from gen-haproxy gen-nginx help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand lb; and not __fish_seen_subcommand_from gen-haproxy gen-nginx help" -s V -l version -d 'Print version'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand lb; and not __fish_seen_subcommand_from gen-haproxy gen-nginx help" -f -a "gen-haproxy" -d 'Generate an HAProxy (2.6+) config that health-checks /api/fleet/cluster/health'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand lb; and not __fish_seen_subcommand_from gen-haproxy gen-nginx help" -f -a "gen-nginx" -d 'Generate an nginx (OSS) config with passive health checks'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand lb; and not __fish_seen_subcommand_from gen-haproxy gen-nginx help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand lb; and __fish_seen_subcommand_from gen-haproxy" -l node -d 'A backend node as HOST:PORT or [IPV6]:PORT; repeat for each node (default: the live registry)' -r
complete -c fleetctl -n "__fish_fleetctl_using_subcommand lb; and __fish_seen_subcommand_from gen-haproxy" -l server -d 'Ask this node over HTTP instead of reading the backend named in the config' -r
complete -c fleetctl -n "__fish_fleetctl_using_subcommand lb; and __fish_seen_subcommand_from gen-haproxy" -l token -d 'Admin API token for --server' -r
complete -c fleetctl -n "__fish_fleetctl_using_subcommand lb; and __fish_seen_subcommand_from gen-haproxy" -l ca-file -d 'Trust only the CA certificates in this PEM file for an https:// --server' -r -F
complete -c fleetctl -n "__fish_fleetctl_using_subcommand lb; and __fish_seen_subcommand_from gen-haproxy" -l bind -d 'Address the load balancer listens on [default: 0.0.0.0:80, or 0.0.0.0:443 with --tls-cert]' -r
complete -c fleetctl -n "__fish_fleetctl_using_subcommand lb; and __fish_seen_subcommand_from gen-haproxy" -l tls-cert -d 'Terminate TLS with this certificate (HAProxy: one PEM holding certificate and key)' -r -F
complete -c fleetctl -n "__fish_fleetctl_using_subcommand lb; and __fish_seen_subcommand_from gen-haproxy" -l tls-key -d 'nginx: the private key for --tls-cert [default: the --tls-cert file]' -r -F
complete -c fleetctl -n "__fish_fleetctl_using_subcommand lb; and __fish_seen_subcommand_from gen-haproxy" -l node-ca-file -d 'Speak TLS to the nodes (they serve `server.tls`) and verify their certificates against this PEM CA file; nodes from the registry must then advertise https:// URLs' -r -F
complete -c fleetctl -n "__fish_fleetctl_using_subcommand lb; and __fish_seen_subcommand_from gen-haproxy" -l node-tls-name -d 'The name every node\'s certificate carries, sent as SNI and checked [default: HAProxy checks each node\'s DNS name (IP addresses: chain only); nginx needs one common name]' -r
complete -c fleetctl -n "__fish_fleetctl_using_subcommand lb; and __fish_seen_subcommand_from gen-haproxy" -l node-client-cert -d 'Client certificate the LB presents to nodes with `server.tls.client_ca` (HAProxy: one PEM holding certificate and key)' -r -F
complete -c fleetctl -n "__fish_fleetctl_using_subcommand lb; and __fish_seen_subcommand_from gen-haproxy" -l node-client-key -d 'nginx: the private key for --node-client-cert [default: the --node-client-cert file]' -r -F
complete -c fleetctl -n "__fish_fleetctl_using_subcommand lb; and __fish_seen_subcommand_from gen-haproxy" -l balance -d 'How requests are spread over the nodes' -r -f -a "roundrobin\t'Each node in turn (nginx: its default round-robin)'
leastconn\t'The node with the fewest open connections (nginx: least_conn)'
source\t'The same client address always reaches the same node (nginx: ip_hash)'"
complete -c fleetctl -n "__fish_fleetctl_using_subcommand lb; and __fish_seen_subcommand_from gen-haproxy" -l check-interval -d 'Time between health checks (HAProxy); nginx\'s fail_timeout is this × --fall' -r
complete -c fleetctl -n "__fish_fleetctl_using_subcommand lb; and __fish_seen_subcommand_from gen-haproxy" -l fall -d 'Failed checks (nginx: failed requests) before a node is taken out' -r
complete -c fleetctl -n "__fish_fleetctl_using_subcommand lb; and __fish_seen_subcommand_from gen-haproxy" -l rise -d 'Passed checks before a node is put back (HAProxy)' -r
complete -c fleetctl -n "__fish_fleetctl_using_subcommand lb; and __fish_seen_subcommand_from gen-haproxy" -l runtime-dir -d 'Put pid file, logs, admin socket and temp files here instead of the distribution\'s paths (/run, /var/log, /var/lib/nginx), to run the load balancer unprivileged' -r -F
complete -c fleetctl -n "__fish_fleetctl_using_subcommand lb; and __fish_seen_subcommand_from gen-haproxy" -s o -l out -d 'Write to this file (atomically: a temp file in the same directory, then a rename) instead of stdout; with --check, a rejected config never replaces the file' -r -F
complete -c fleetctl -n "__fish_fleetctl_using_subcommand lb; and __fish_seen_subcommand_from gen-haproxy" -l config -d 'Config file [default: ./fleet.yaml if present, else the embedded standalone default]' -r -F
complete -c fleetctl -n "__fish_fleetctl_using_subcommand lb; and __fish_seen_subcommand_from gen-haproxy" -l output -d 'Output format; with json, stdout carries only JSON and messages go to stderr' -r -f -a "table\t'Human-readable tables'
json\t'Machine-readable JSON on stdout'"
complete -c fleetctl -n "__fish_fleetctl_using_subcommand lb; and __fish_seen_subcommand_from gen-haproxy" -l fragment -d 'Only the backend/upstream section, for inclusion in an existing config'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand lb; and __fish_seen_subcommand_from gen-haproxy" -l check -d 'Run the real validator (haproxy -c / nginx -t) on the result and report its verdict'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand lb; and __fish_seen_subcommand_from gen-haproxy" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace)'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand lb; and __fish_seen_subcommand_from gen-haproxy" -s q -l quiet -d 'Only errors on stderr; no progress bars'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand lb; and __fish_seen_subcommand_from gen-haproxy" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand lb; and __fish_seen_subcommand_from gen-haproxy" -s V -l version -d 'Print version'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand lb; and __fish_seen_subcommand_from gen-nginx" -l node -d 'A backend node as HOST:PORT or [IPV6]:PORT; repeat for each node (default: the live registry)' -r
complete -c fleetctl -n "__fish_fleetctl_using_subcommand lb; and __fish_seen_subcommand_from gen-nginx" -l server -d 'Ask this node over HTTP instead of reading the backend named in the config' -r
complete -c fleetctl -n "__fish_fleetctl_using_subcommand lb; and __fish_seen_subcommand_from gen-nginx" -l token -d 'Admin API token for --server' -r
complete -c fleetctl -n "__fish_fleetctl_using_subcommand lb; and __fish_seen_subcommand_from gen-nginx" -l ca-file -d 'Trust only the CA certificates in this PEM file for an https:// --server' -r -F
complete -c fleetctl -n "__fish_fleetctl_using_subcommand lb; and __fish_seen_subcommand_from gen-nginx" -l bind -d 'Address the load balancer listens on [default: 0.0.0.0:80, or 0.0.0.0:443 with --tls-cert]' -r
complete -c fleetctl -n "__fish_fleetctl_using_subcommand lb; and __fish_seen_subcommand_from gen-nginx" -l tls-cert -d 'Terminate TLS with this certificate (HAProxy: one PEM holding certificate and key)' -r -F
complete -c fleetctl -n "__fish_fleetctl_using_subcommand lb; and __fish_seen_subcommand_from gen-nginx" -l tls-key -d 'nginx: the private key for --tls-cert [default: the --tls-cert file]' -r -F
complete -c fleetctl -n "__fish_fleetctl_using_subcommand lb; and __fish_seen_subcommand_from gen-nginx" -l node-ca-file -d 'Speak TLS to the nodes (they serve `server.tls`) and verify their certificates against this PEM CA file; nodes from the registry must then advertise https:// URLs' -r -F
complete -c fleetctl -n "__fish_fleetctl_using_subcommand lb; and __fish_seen_subcommand_from gen-nginx" -l node-tls-name -d 'The name every node\'s certificate carries, sent as SNI and checked [default: HAProxy checks each node\'s DNS name (IP addresses: chain only); nginx needs one common name]' -r
complete -c fleetctl -n "__fish_fleetctl_using_subcommand lb; and __fish_seen_subcommand_from gen-nginx" -l node-client-cert -d 'Client certificate the LB presents to nodes with `server.tls.client_ca` (HAProxy: one PEM holding certificate and key)' -r -F
complete -c fleetctl -n "__fish_fleetctl_using_subcommand lb; and __fish_seen_subcommand_from gen-nginx" -l node-client-key -d 'nginx: the private key for --node-client-cert [default: the --node-client-cert file]' -r -F
complete -c fleetctl -n "__fish_fleetctl_using_subcommand lb; and __fish_seen_subcommand_from gen-nginx" -l balance -d 'How requests are spread over the nodes' -r -f -a "roundrobin\t'Each node in turn (nginx: its default round-robin)'
leastconn\t'The node with the fewest open connections (nginx: least_conn)'
source\t'The same client address always reaches the same node (nginx: ip_hash)'"
complete -c fleetctl -n "__fish_fleetctl_using_subcommand lb; and __fish_seen_subcommand_from gen-nginx" -l check-interval -d 'Time between health checks (HAProxy); nginx\'s fail_timeout is this × --fall' -r
complete -c fleetctl -n "__fish_fleetctl_using_subcommand lb; and __fish_seen_subcommand_from gen-nginx" -l fall -d 'Failed checks (nginx: failed requests) before a node is taken out' -r
complete -c fleetctl -n "__fish_fleetctl_using_subcommand lb; and __fish_seen_subcommand_from gen-nginx" -l rise -d 'Passed checks before a node is put back (HAProxy)' -r
complete -c fleetctl -n "__fish_fleetctl_using_subcommand lb; and __fish_seen_subcommand_from gen-nginx" -l runtime-dir -d 'Put pid file, logs, admin socket and temp files here instead of the distribution\'s paths (/run, /var/log, /var/lib/nginx), to run the load balancer unprivileged' -r -F
complete -c fleetctl -n "__fish_fleetctl_using_subcommand lb; and __fish_seen_subcommand_from gen-nginx" -s o -l out -d 'Write to this file (atomically: a temp file in the same directory, then a rename) instead of stdout; with --check, a rejected config never replaces the file' -r -F
complete -c fleetctl -n "__fish_fleetctl_using_subcommand lb; and __fish_seen_subcommand_from gen-nginx" -l config -d 'Config file [default: ./fleet.yaml if present, else the embedded standalone default]' -r -F
complete -c fleetctl -n "__fish_fleetctl_using_subcommand lb; and __fish_seen_subcommand_from gen-nginx" -l output -d 'Output format; with json, stdout carries only JSON and messages go to stderr' -r -f -a "table\t'Human-readable tables'
json\t'Machine-readable JSON on stdout'"
complete -c fleetctl -n "__fish_fleetctl_using_subcommand lb; and __fish_seen_subcommand_from gen-nginx" -l fragment -d 'Only the backend/upstream section, for inclusion in an existing config'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand lb; and __fish_seen_subcommand_from gen-nginx" -l check -d 'Run the real validator (haproxy -c / nginx -t) on the result and report its verdict'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand lb; and __fish_seen_subcommand_from gen-nginx" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace)'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand lb; and __fish_seen_subcommand_from gen-nginx" -s q -l quiet -d 'Only errors on stderr; no progress bars'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand lb; and __fish_seen_subcommand_from gen-nginx" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand lb; and __fish_seen_subcommand_from gen-nginx" -s V -l version -d 'Print version'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand lb; and __fish_seen_subcommand_from help" -f -a "gen-haproxy" -d 'Generate an HAProxy (2.6+) config that health-checks /api/fleet/cluster/health'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand lb; and __fish_seen_subcommand_from help" -f -a "gen-nginx" -d 'Generate an nginx (OSS) config with passive health checks'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand lb; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand users; and not __fish_seen_subcommand_from hash-password help" -l config -d 'Config file [default: ./fleet.yaml if present, else the embedded standalone default]' -r -F
complete -c fleetctl -n "__fish_fleetctl_using_subcommand users; and not __fish_seen_subcommand_from hash-password help" -l output -d 'Output format; with json, stdout carries only JSON and messages go to stderr' -r -f -a "table\t'Human-readable tables'
json\t'Machine-readable JSON on stdout'"
complete -c fleetctl -n "__fish_fleetctl_using_subcommand users; and not __fish_seen_subcommand_from hash-password help" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace)'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand users; and not __fish_seen_subcommand_from hash-password help" -s q -l quiet -d 'Only errors on stderr; no progress bars'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand users; and not __fish_seen_subcommand_from hash-password help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand users; and not __fish_seen_subcommand_from hash-password help" -s V -l version -d 'Print version'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand users; and not __fish_seen_subcommand_from hash-password help" -f -a "hash-password" -d 'Prompt for a password (twice, no echo) and print its argon2id hash for `auth.users`'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand users; and not __fish_seen_subcommand_from hash-password help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand users; and __fish_seen_subcommand_from hash-password" -l config -d 'Config file [default: ./fleet.yaml if present, else the embedded standalone default]' -r -F
complete -c fleetctl -n "__fish_fleetctl_using_subcommand users; and __fish_seen_subcommand_from hash-password" -l output -d 'Output format; with json, stdout carries only JSON and messages go to stderr' -r -f -a "table\t'Human-readable tables'
json\t'Machine-readable JSON on stdout'"
complete -c fleetctl -n "__fish_fleetctl_using_subcommand users; and __fish_seen_subcommand_from hash-password" -l stdin -d 'Read the password from one line of standard input instead of prompting (only the trailing newline is removed)'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand users; and __fish_seen_subcommand_from hash-password" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace)'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand users; and __fish_seen_subcommand_from hash-password" -s q -l quiet -d 'Only errors on stderr; no progress bars'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand users; and __fish_seen_subcommand_from hash-password" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand users; and __fish_seen_subcommand_from hash-password" -s V -l version -d 'Print version'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand users; and __fish_seen_subcommand_from help" -f -a "hash-password" -d 'Prompt for a password (twice, no echo) and print its argon2id hash for `auth.users`'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand users; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand keys; and not __fish_seen_subcommand_from new rotate-encryption help" -l config -d 'Config file [default: ./fleet.yaml if present, else the embedded standalone default]' -r -F
complete -c fleetctl -n "__fish_fleetctl_using_subcommand keys; and not __fish_seen_subcommand_from new rotate-encryption help" -l output -d 'Output format; with json, stdout carries only JSON and messages go to stderr' -r -f -a "table\t'Human-readable tables'
json\t'Machine-readable JSON on stdout'"
complete -c fleetctl -n "__fish_fleetctl_using_subcommand keys; and not __fish_seen_subcommand_from new rotate-encryption help" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace)'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand keys; and not __fish_seen_subcommand_from new rotate-encryption help" -s q -l quiet -d 'Only errors on stderr; no progress bars'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand keys; and not __fish_seen_subcommand_from new rotate-encryption help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand keys; and not __fish_seen_subcommand_from new rotate-encryption help" -s V -l version -d 'Print version'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand keys; and not __fish_seen_subcommand_from new rotate-encryption help" -f -a "new" -d 'Mint an agent API key or admin token (printed once, with the config entry holding only its SHA-256), or an encryption key line'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand keys; and not __fish_seen_subcommand_from new rotate-encryption help" -f -a "rotate-encryption" -d 'Re-seal every session record and stored report with the first key of security.encryption_key_file'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand keys; and not __fish_seen_subcommand_from new rotate-encryption help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand keys; and __fish_seen_subcommand_from new" -l name -d 'A name for the key, e.g. the group of machines that will use it (letters, digits, `.`, `_`, `-`)' -r
complete -c fleetctl -n "__fish_fleetctl_using_subcommand keys; and __fish_seen_subcommand_from new" -l kind -d 'Mint an agent API key, an admin token, a /metrics scrape token or an encryption key line' -r -f -a "agent\t'An agent API key (`fleet_…`) for `auth.api_keys`'
admin\t'An admin API token (`fleetadm_…`) for `auth.admin_tokens`'
metrics\t'A Prometheus scrape token (`fleetmet_…`) for `auth.metrics_tokens`'
encryption\t'An encryption key line (`NAME:<base64 of 32 bytes>`) for security.encryption_key_file'"
complete -c fleetctl -n "__fish_fleetctl_using_subcommand keys; and __fish_seen_subcommand_from new" -l config -d 'Config file [default: ./fleet.yaml if present, else the embedded standalone default]' -r -F
complete -c fleetctl -n "__fish_fleetctl_using_subcommand keys; and __fish_seen_subcommand_from new" -l output -d 'Output format; with json, stdout carries only JSON and messages go to stderr' -r -f -a "table\t'Human-readable tables'
json\t'Machine-readable JSON on stdout'"
complete -c fleetctl -n "__fish_fleetctl_using_subcommand keys; and __fish_seen_subcommand_from new" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace)'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand keys; and __fish_seen_subcommand_from new" -s q -l quiet -d 'Only errors on stderr; no progress bars'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand keys; and __fish_seen_subcommand_from new" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand keys; and __fish_seen_subcommand_from new" -s V -l version -d 'Print version'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand keys; and __fish_seen_subcommand_from rotate-encryption" -l config -d 'Config file [default: ./fleet.yaml if present, else the embedded standalone default]' -r -F
complete -c fleetctl -n "__fish_fleetctl_using_subcommand keys; and __fish_seen_subcommand_from rotate-encryption" -l output -d 'Output format; with json, stdout carries only JSON and messages go to stderr' -r -f -a "table\t'Human-readable tables'
json\t'Machine-readable JSON on stdout'"
complete -c fleetctl -n "__fish_fleetctl_using_subcommand keys; and __fish_seen_subcommand_from rotate-encryption" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace)'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand keys; and __fish_seen_subcommand_from rotate-encryption" -s q -l quiet -d 'Only errors on stderr; no progress bars'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand keys; and __fish_seen_subcommand_from rotate-encryption" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand keys; and __fish_seen_subcommand_from rotate-encryption" -s V -l version -d 'Print version'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand keys; and __fish_seen_subcommand_from help" -f -a "new" -d 'Mint an agent API key or admin token (printed once, with the config entry holding only its SHA-256), or an encryption key line'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand keys; and __fish_seen_subcommand_from help" -f -a "rotate-encryption" -d 'Re-seal every session record and stored report with the first key of security.encryption_key_file'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand keys; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand migrate" -l from -d 'Config whose backends hold the data now (the one the old nodes run with)' -r -F
complete -c fleetctl -n "__fish_fleetctl_using_subcommand migrate" -l to -d 'Config whose backends receive the data' -r -F
complete -c fleetctl -n "__fish_fleetctl_using_subcommand migrate" -l batch-size -d 'Records per batch (and per checkpoint)' -r
complete -c fleetctl -n "__fish_fleetctl_using_subcommand migrate" -l state -d 'Checkpoint file [default: <NEW.yaml>.migrate-state.json next to the --to config]' -r -F
complete -c fleetctl -n "__fish_fleetctl_using_subcommand migrate" -l config -d 'Config file [default: ./fleet.yaml if present, else the embedded standalone default]' -r -F
complete -c fleetctl -n "__fish_fleetctl_using_subcommand migrate" -l output -d 'Output format; with json, stdout carries only JSON and messages go to stderr' -r -f -a "table\t'Human-readable tables'
json\t'Machine-readable JSON on stdout'"
complete -c fleetctl -n "__fish_fleetctl_using_subcommand migrate" -l restart -d 'Ignore an unfinished checkpoint and copy from the start'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand migrate" -l dry-run -d 'Print how many records each keyspace would copy; write nothing'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand migrate" -l verify-only -d 'Only compare both sides (counts and checksums); copy nothing'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand migrate" -l live -d 'The --to stores already serve: newer records there are expected, so verification fails only for --from records missing or older on the --to side'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand migrate" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace)'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand migrate" -s q -l quiet -d 'Only errors on stderr; no progress bars'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand migrate" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand migrate" -s V -l version -d 'Print version'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand agent" -l server -d 'Fleet server or load balancer URL; repeat or comma-separate for several [default: agent.server from the config]' -r
complete -c fleetctl -n "__fish_fleetctl_using_subcommand agent" -l ca-file -d 'Trust only the CA certificates in this PEM file for https:// servers [default: agent.ca_file; else the system\'s CAs]' -r -F
complete -c fleetctl -n "__fish_fleetctl_using_subcommand agent" -l api-key-file -d 'File holding the agent API key (`fleet_…`) [default: agent.api_key_file]' -r -F
complete -c fleetctl -n "__fish_fleetctl_using_subcommand agent" -l interval -d 'Time between reports, e.g. 10s, 1m [default: agent.interval, 10s]' -r
complete -c fleetctl -n "__fish_fleetctl_using_subcommand agent" -l machine-id -d 'Machine id to report as [default: /etc/machine-id, else the hostname]' -r
complete -c fleetctl -n "__fish_fleetctl_using_subcommand agent" -l buffer -d 'Reports kept while no server answers (oldest dropped first)' -r
complete -c fleetctl -n "__fish_fleetctl_using_subcommand agent" -l simulate -d 'Simulate N virtual machines with realistic, varying metrics instead of this host' -r
complete -c fleetctl -n "__fish_fleetctl_using_subcommand agent" -l duration -d 'Stop after this long (e.g. 60s) instead of running until stopped' -r
complete -c fleetctl -n "__fish_fleetctl_using_subcommand agent" -l config -d 'Config file [default: ./fleet.yaml if present, else the embedded standalone default]' -r -F
complete -c fleetctl -n "__fish_fleetctl_using_subcommand agent" -l output -d 'Output format; with json, stdout carries only JSON and messages go to stderr' -r -f -a "table\t'Human-readable tables'
json\t'Machine-readable JSON on stdout'"
complete -c fleetctl -n "__fish_fleetctl_using_subcommand agent" -l once -d 'Collect one report, print it and exit without sending'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand agent" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace)'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand agent" -s q -l quiet -d 'Only errors on stderr; no progress bars'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand agent" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand agent" -s V -l version -d 'Print version'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand completions" -l config -d 'Config file [default: ./fleet.yaml if present, else the embedded standalone default]' -r -F
complete -c fleetctl -n "__fish_fleetctl_using_subcommand completions" -l output -d 'Output format; with json, stdout carries only JSON and messages go to stderr' -r -f -a "table\t'Human-readable tables'
json\t'Machine-readable JSON on stdout'"
complete -c fleetctl -n "__fish_fleetctl_using_subcommand completions" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace)'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand completions" -s q -l quiet -d 'Only errors on stderr; no progress bars'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand completions" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand completions" -s V -l version -d 'Print version'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand man" -l dir -d 'Directory to write the pages into' -r -F
complete -c fleetctl -n "__fish_fleetctl_using_subcommand man" -l config -d 'Config file [default: ./fleet.yaml if present, else the embedded standalone default]' -r -F
complete -c fleetctl -n "__fish_fleetctl_using_subcommand man" -l output -d 'Output format; with json, stdout carries only JSON and messages go to stderr' -r -f -a "table\t'Human-readable tables'
json\t'Machine-readable JSON on stdout'"
complete -c fleetctl -n "__fish_fleetctl_using_subcommand man" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace)'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand man" -s q -l quiet -d 'Only errors on stderr; no progress bars'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand man" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand man" -s V -l version -d 'Print version'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand help; and not __fish_seen_subcommand_from serve cluster nodes sessions config lb users keys migrate agent completions man help" -f -a "serve" -d 'Run a server node: agent API, fleet API, dashboard and cluster endpoints'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand help; and not __fish_seen_subcommand_from serve cluster nodes sessions config lb users keys migrate agent completions man help" -f -a "cluster" -d 'Inspect the cluster as a whole'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand help; and not __fish_seen_subcommand_from serve cluster nodes sessions config lb users keys migrate agent completions man help" -f -a "nodes" -d 'List, drain, undrain or remove cluster nodes'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand help; and not __fish_seen_subcommand_from serve cluster nodes sessions config lb users keys migrate agent completions man help" -f -a "sessions" -d 'Garbage-collect, list and revoke login sessions'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand help; and not __fish_seen_subcommand_from serve cluster nodes sessions config lb users keys migrate agent completions man help" -f -a "config" -d 'Validate, create or print the config file'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand help; and not __fish_seen_subcommand_from serve cluster nodes sessions config lb users keys migrate agent completions man help" -f -a "lb" -d 'Generate load-balancer configs for the cluster'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand help; and not __fish_seen_subcommand_from serve cluster nodes sessions config lb users keys migrate agent completions man help" -f -a "users" -d 'Manage dashboard users'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand help; and not __fish_seen_subcommand_from serve cluster nodes sessions config lb users keys migrate agent completions man help" -f -a "keys" -d 'Manage agent API keys'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand help; and not __fish_seen_subcommand_from serve cluster nodes sessions config lb users keys migrate agent completions man help" -f -a "migrate" -d 'Copy sessions, API key usage and fleet data to the backends of another config'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand help; and not __fish_seen_subcommand_from serve cluster nodes sessions config lb users keys migrate agent completions man help" -f -a "agent" -d 'Collect this host\'s metrics and report them to the fleet server'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand help; and not __fish_seen_subcommand_from serve cluster nodes sessions config lb users keys migrate agent completions man help" -f -a "completions" -d 'Print a shell completion script'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand help; and not __fish_seen_subcommand_from serve cluster nodes sessions config lb users keys migrate agent completions man help" -f -a "man" -d 'Write man pages, one per subcommand'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand help; and not __fish_seen_subcommand_from serve cluster nodes sessions config lb users keys migrate agent completions man help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand help; and __fish_seen_subcommand_from cluster" -f -a "status" -d 'Show every node, its state, the leader and the backend\'s health'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand help; and __fish_seen_subcommand_from nodes" -f -a "list" -d 'List the registered nodes with their state and last heartbeat'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand help; and __fish_seen_subcommand_from nodes" -f -a "drain" -d 'Put a node into draining: its health check fails so load balancers stop sending work'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand help; and __fish_seen_subcommand_from nodes" -f -a "undrain" -d 'Take a node out of draining'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand help; and __fish_seen_subcommand_from nodes" -f -a "remove" -d 'Forget a node in the registry (refuses an active node without --force)'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand help; and __fish_seen_subcommand_from sessions" -f -a "gc" -d 'Delete expired sessions (SQLite and file stores; Redis expires them itself)'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand help; and __fish_seen_subcommand_from sessions" -f -a "list" -d 'List live sessions'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand help; and __fish_seen_subcommand_from sessions" -f -a "revoke" -d 'End sessions on every node at once'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "validate" -d 'Check a config file and report every problem with file:line:column'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "init" -d 'Write a new config file by answering a few questions'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "show" -d 'Print the effective config (file, defaults and environment), secrets redacted'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand help; and __fish_seen_subcommand_from lb" -f -a "gen-haproxy" -d 'Generate an HAProxy (2.6+) config that health-checks /api/fleet/cluster/health'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand help; and __fish_seen_subcommand_from lb" -f -a "gen-nginx" -d 'Generate an nginx (OSS) config with passive health checks'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand help; and __fish_seen_subcommand_from users" -f -a "hash-password" -d 'Prompt for a password (twice, no echo) and print its argon2id hash for `auth.users`'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand help; and __fish_seen_subcommand_from keys" -f -a "new" -d 'Mint an agent API key or admin token (printed once, with the config entry holding only its SHA-256), or an encryption key line'
complete -c fleetctl -n "__fish_fleetctl_using_subcommand help; and __fish_seen_subcommand_from keys" -f -a "rotate-encryption" -d 'Re-seal every session record and stored report with the first key of security.encryption_key_file'
