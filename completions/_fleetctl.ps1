
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'fleetctl' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'fleetctl'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'fleetctl' {
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file [default: ./fleet.yaml if present, else the embedded standalone default]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; with json, stdout carries only JSON and messages go to stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr; no progress bars')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr; no progress bars')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('serve', 'serve', [CompletionResultType]::ParameterValue, 'Run a server node: agent API, fleet API, dashboard and cluster endpoints')
            [CompletionResult]::new('cluster', 'cluster', [CompletionResultType]::ParameterValue, 'Inspect the cluster as a whole')
            [CompletionResult]::new('nodes', 'nodes', [CompletionResultType]::ParameterValue, 'List, drain, undrain or remove cluster nodes')
            [CompletionResult]::new('sessions', 'sessions', [CompletionResultType]::ParameterValue, 'Garbage-collect, list and revoke login sessions')
            [CompletionResult]::new('config', 'config', [CompletionResultType]::ParameterValue, 'Validate, create or print the config file')
            [CompletionResult]::new('lb', 'lb', [CompletionResultType]::ParameterValue, 'Generate load-balancer configs for the cluster')
            [CompletionResult]::new('users', 'users', [CompletionResultType]::ParameterValue, 'Manage dashboard users')
            [CompletionResult]::new('keys', 'keys', [CompletionResultType]::ParameterValue, 'Manage agent API keys')
            [CompletionResult]::new('migrate', 'migrate', [CompletionResultType]::ParameterValue, 'Copy sessions, API key usage and fleet data to the backends of another config')
            [CompletionResult]::new('agent', 'agent', [CompletionResultType]::ParameterValue, 'Collect this host''s metrics and report them to the fleet server')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script')
            [CompletionResult]::new('man', 'man', [CompletionResultType]::ParameterValue, 'Write man pages, one per subcommand')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'fleetctl;serve' {
            [CompletionResult]::new('--host', '--host', [CompletionResultType]::ParameterName, 'Address to listen on, overriding `server.host`')
            [CompletionResult]::new('--port', '--port', [CompletionResultType]::ParameterName, 'Port to listen on, overriding `server.port` (0 picks a free port)')
            [CompletionResult]::new('--node-id', '--node-id', [CompletionResultType]::ParameterName, 'Node id, overriding `cluster.node_id` [default: <hostname>-<6 random chars>]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file [default: ./fleet.yaml if present, else the embedded standalone default]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; with json, stdout carries only JSON and messages go to stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr; no progress bars')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr; no progress bars')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'fleetctl;cluster' {
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file [default: ./fleet.yaml if present, else the embedded standalone default]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; with json, stdout carries only JSON and messages go to stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr; no progress bars')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr; no progress bars')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'Show every node, its state, the leader and the backend''s health')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'fleetctl;cluster;status' {
            [CompletionResult]::new('--server', '--server', [CompletionResultType]::ParameterName, 'Ask this node over HTTP instead of reading the backend named in the config')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Admin API token for --server')
            [CompletionResult]::new('--ca-file', '--ca-file', [CompletionResultType]::ParameterName, 'Trust only the CA certificates in this PEM file for an https:// --server')
            [CompletionResult]::new('--min-active', '--min-active', [CompletionResultType]::ParameterName, 'Exit 3 when fewer than N nodes are active')
            [CompletionResult]::new('--interval', '--interval', [CompletionResultType]::ParameterName, 'Seconds between redraws with --watch')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Print a monitoring-plugin status line and exit 0/1/2/3 (OK/WARNING/CRITICAL/UNKNOWN)')
            [CompletionResult]::new('--warning', '--warning', [CompletionResultType]::ParameterName, 'With --format nagios: WARNING when the active nodes fall outside this range; N means "at least N" (N:) [default: every node that has not left]')
            [CompletionResult]::new('--critical', '--critical', [CompletionResultType]::ParameterName, 'With --format nagios: CRITICAL when the active nodes fall outside this range [default: 1]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file [default: ./fleet.yaml if present, else the embedded standalone default]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; with json, stdout carries only JSON and messages go to stderr')
            [CompletionResult]::new('--watch', '--watch', [CompletionResultType]::ParameterName, 'Redraw the status every few seconds until interrupted')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr; no progress bars')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr; no progress bars')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'fleetctl;cluster;help' {
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'Show every node, its state, the leader and the backend''s health')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'fleetctl;cluster;help;status' {
            break
        }
        'fleetctl;cluster;help;help' {
            break
        }
        'fleetctl;nodes' {
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file [default: ./fleet.yaml if present, else the embedded standalone default]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; with json, stdout carries only JSON and messages go to stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr; no progress bars')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr; no progress bars')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List the registered nodes with their state and last heartbeat')
            [CompletionResult]::new('drain', 'drain', [CompletionResultType]::ParameterValue, 'Put a node into draining: its health check fails so load balancers stop sending work')
            [CompletionResult]::new('undrain', 'undrain', [CompletionResultType]::ParameterValue, 'Take a node out of draining')
            [CompletionResult]::new('remove', 'remove', [CompletionResultType]::ParameterValue, 'Forget a node in the registry (refuses an active node without --force)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'fleetctl;nodes;list' {
            [CompletionResult]::new('--server', '--server', [CompletionResultType]::ParameterName, 'Ask this node over HTTP instead of reading the backend named in the config')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Admin API token for --server')
            [CompletionResult]::new('--ca-file', '--ca-file', [CompletionResultType]::ParameterName, 'Trust only the CA certificates in this PEM file for an https:// --server')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file [default: ./fleet.yaml if present, else the embedded standalone default]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; with json, stdout carries only JSON and messages go to stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr; no progress bars')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr; no progress bars')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'fleetctl;nodes;drain' {
            [CompletionResult]::new('--server', '--server', [CompletionResultType]::ParameterName, 'Ask this node over HTTP instead of reading the backend named in the config')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Admin API token for --server')
            [CompletionResult]::new('--ca-file', '--ca-file', [CompletionResultType]::ParameterName, 'Trust only the CA certificates in this PEM file for an https:// --server')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file [default: ./fleet.yaml if present, else the embedded standalone default]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; with json, stdout carries only JSON and messages go to stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr; no progress bars')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr; no progress bars')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'fleetctl;nodes;undrain' {
            [CompletionResult]::new('--server', '--server', [CompletionResultType]::ParameterName, 'Ask this node over HTTP instead of reading the backend named in the config')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Admin API token for --server')
            [CompletionResult]::new('--ca-file', '--ca-file', [CompletionResultType]::ParameterName, 'Trust only the CA certificates in this PEM file for an https:// --server')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file [default: ./fleet.yaml if present, else the embedded standalone default]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; with json, stdout carries only JSON and messages go to stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr; no progress bars')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr; no progress bars')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'fleetctl;nodes;remove' {
            [CompletionResult]::new('--server', '--server', [CompletionResultType]::ParameterName, 'Ask this node over HTTP instead of reading the backend named in the config')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Admin API token for --server')
            [CompletionResult]::new('--ca-file', '--ca-file', [CompletionResultType]::ParameterName, 'Trust only the CA certificates in this PEM file for an https:// --server')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file [default: ./fleet.yaml if present, else the embedded standalone default]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; with json, stdout carries only JSON and messages go to stderr')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'Remove the node even if it is still active')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr; no progress bars')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr; no progress bars')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'fleetctl;nodes;help' {
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List the registered nodes with their state and last heartbeat')
            [CompletionResult]::new('drain', 'drain', [CompletionResultType]::ParameterValue, 'Put a node into draining: its health check fails so load balancers stop sending work')
            [CompletionResult]::new('undrain', 'undrain', [CompletionResultType]::ParameterValue, 'Take a node out of draining')
            [CompletionResult]::new('remove', 'remove', [CompletionResultType]::ParameterValue, 'Forget a node in the registry (refuses an active node without --force)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'fleetctl;nodes;help;list' {
            break
        }
        'fleetctl;nodes;help;drain' {
            break
        }
        'fleetctl;nodes;help;undrain' {
            break
        }
        'fleetctl;nodes;help;remove' {
            break
        }
        'fleetctl;nodes;help;help' {
            break
        }
        'fleetctl;sessions' {
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file [default: ./fleet.yaml if present, else the embedded standalone default]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; with json, stdout carries only JSON and messages go to stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr; no progress bars')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr; no progress bars')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('gc', 'gc', [CompletionResultType]::ParameterValue, 'Delete expired sessions (SQLite and file stores; Redis expires them itself)')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List live sessions')
            [CompletionResult]::new('revoke', 'revoke', [CompletionResultType]::ParameterValue, 'End sessions on every node at once')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'fleetctl;sessions;gc' {
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file [default: ./fleet.yaml if present, else the embedded standalone default]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; with json, stdout carries only JSON and messages go to stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr; no progress bars')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr; no progress bars')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'fleetctl;sessions;list' {
            [CompletionResult]::new('--user', '--user', [CompletionResultType]::ParameterName, 'Only this user''s sessions')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file [default: ./fleet.yaml if present, else the embedded standalone default]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; with json, stdout carries only JSON and messages go to stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr; no progress bars')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr; no progress bars')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'fleetctl;sessions;revoke' {
            [CompletionResult]::new('--user', '--user', [CompletionResultType]::ParameterName, 'Revoke every session of this user')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file [default: ./fleet.yaml if present, else the embedded standalone default]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; with json, stdout carries only JSON and messages go to stderr')
            [CompletionResult]::new('--all', '--all', [CompletionResultType]::ParameterName, 'Revoke every session of every user')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr; no progress bars')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr; no progress bars')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'fleetctl;sessions;help' {
            [CompletionResult]::new('gc', 'gc', [CompletionResultType]::ParameterValue, 'Delete expired sessions (SQLite and file stores; Redis expires them itself)')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List live sessions')
            [CompletionResult]::new('revoke', 'revoke', [CompletionResultType]::ParameterValue, 'End sessions on every node at once')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'fleetctl;sessions;help;gc' {
            break
        }
        'fleetctl;sessions;help;list' {
            break
        }
        'fleetctl;sessions;help;revoke' {
            break
        }
        'fleetctl;sessions;help;help' {
            break
        }
        'fleetctl;config' {
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file [default: ./fleet.yaml if present, else the embedded standalone default]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; with json, stdout carries only JSON and messages go to stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr; no progress bars')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr; no progress bars')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('validate', 'validate', [CompletionResultType]::ParameterValue, 'Check a config file and report every problem with file:line:column')
            [CompletionResult]::new('init', 'init', [CompletionResultType]::ParameterValue, 'Write a new config file by answering a few questions')
            [CompletionResult]::new('show', 'show', [CompletionResultType]::ParameterValue, 'Print the effective config (file, defaults and environment), secrets redacted')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'fleetctl;config;validate' {
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file [default: ./fleet.yaml if present, else the embedded standalone default]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; with json, stdout carries only JSON and messages go to stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr; no progress bars')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr; no progress bars')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'fleetctl;config;init' {
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file [default: ./fleet.yaml if present, else the embedded standalone default]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; with json, stdout carries only JSON and messages go to stderr')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'Overwrite the file if it exists')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr; no progress bars')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr; no progress bars')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'fleetctl;config;show' {
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file [default: ./fleet.yaml if present, else the embedded standalone default]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; with json, stdout carries only JSON and messages go to stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr; no progress bars')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr; no progress bars')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'fleetctl;config;help' {
            [CompletionResult]::new('validate', 'validate', [CompletionResultType]::ParameterValue, 'Check a config file and report every problem with file:line:column')
            [CompletionResult]::new('init', 'init', [CompletionResultType]::ParameterValue, 'Write a new config file by answering a few questions')
            [CompletionResult]::new('show', 'show', [CompletionResultType]::ParameterValue, 'Print the effective config (file, defaults and environment), secrets redacted')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'fleetctl;config;help;validate' {
            break
        }
        'fleetctl;config;help;init' {
            break
        }
        'fleetctl;config;help;show' {
            break
        }
        'fleetctl;config;help;help' {
            break
        }
        'fleetctl;lb' {
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file [default: ./fleet.yaml if present, else the embedded standalone default]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; with json, stdout carries only JSON and messages go to stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr; no progress bars')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr; no progress bars')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('gen-haproxy', 'gen-haproxy', [CompletionResultType]::ParameterValue, 'Generate an HAProxy (2.6+) config that health-checks /api/fleet/cluster/health')
            [CompletionResult]::new('gen-nginx', 'gen-nginx', [CompletionResultType]::ParameterValue, 'Generate an nginx (OSS) config with passive health checks')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'fleetctl;lb;gen-haproxy' {
            [CompletionResult]::new('--node', '--node', [CompletionResultType]::ParameterName, 'A backend node as HOST:PORT or [IPV6]:PORT; repeat for each node (default: the live registry)')
            [CompletionResult]::new('--server', '--server', [CompletionResultType]::ParameterName, 'Ask this node over HTTP instead of reading the backend named in the config')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Admin API token for --server')
            [CompletionResult]::new('--ca-file', '--ca-file', [CompletionResultType]::ParameterName, 'Trust only the CA certificates in this PEM file for an https:// --server')
            [CompletionResult]::new('--bind', '--bind', [CompletionResultType]::ParameterName, 'Address the load balancer listens on [default: 0.0.0.0:80, or 0.0.0.0:443 with --tls-cert]')
            [CompletionResult]::new('--tls-cert', '--tls-cert', [CompletionResultType]::ParameterName, 'Terminate TLS with this certificate (HAProxy: one PEM holding certificate and key)')
            [CompletionResult]::new('--tls-key', '--tls-key', [CompletionResultType]::ParameterName, 'nginx: the private key for --tls-cert [default: the --tls-cert file]')
            [CompletionResult]::new('--node-ca-file', '--node-ca-file', [CompletionResultType]::ParameterName, 'Speak TLS to the nodes (they serve `server.tls`) and verify their certificates against this PEM CA file; nodes from the registry must then advertise https:// URLs')
            [CompletionResult]::new('--node-tls-name', '--node-tls-name', [CompletionResultType]::ParameterName, 'The name every node''s certificate carries, sent as SNI and checked [default: HAProxy checks each node''s DNS name (IP addresses: chain only); nginx needs one common name]')
            [CompletionResult]::new('--node-client-cert', '--node-client-cert', [CompletionResultType]::ParameterName, 'Client certificate the LB presents to nodes with `server.tls.client_ca` (HAProxy: one PEM holding certificate and key)')
            [CompletionResult]::new('--node-client-key', '--node-client-key', [CompletionResultType]::ParameterName, 'nginx: the private key for --node-client-cert [default: the --node-client-cert file]')
            [CompletionResult]::new('--balance', '--balance', [CompletionResultType]::ParameterName, 'How requests are spread over the nodes')
            [CompletionResult]::new('--check-interval', '--check-interval', [CompletionResultType]::ParameterName, 'Time between health checks (HAProxy); nginx''s fail_timeout is this × --fall')
            [CompletionResult]::new('--fall', '--fall', [CompletionResultType]::ParameterName, 'Failed checks (nginx: failed requests) before a node is taken out')
            [CompletionResult]::new('--rise', '--rise', [CompletionResultType]::ParameterName, 'Passed checks before a node is put back (HAProxy)')
            [CompletionResult]::new('--runtime-dir', '--runtime-dir', [CompletionResultType]::ParameterName, 'Put pid file, logs, admin socket and temp files here instead of the distribution''s paths (/run, /var/log, /var/lib/nginx), to run the load balancer unprivileged')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Write to this file (atomically: a temp file in the same directory, then a rename) instead of stdout; with --check, a rejected config never replaces the file')
            [CompletionResult]::new('--out', '--out', [CompletionResultType]::ParameterName, 'Write to this file (atomically: a temp file in the same directory, then a rename) instead of stdout; with --check, a rejected config never replaces the file')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file [default: ./fleet.yaml if present, else the embedded standalone default]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; with json, stdout carries only JSON and messages go to stderr')
            [CompletionResult]::new('--fragment', '--fragment', [CompletionResultType]::ParameterName, 'Only the backend/upstream section, for inclusion in an existing config')
            [CompletionResult]::new('--check', '--check', [CompletionResultType]::ParameterName, 'Run the real validator (haproxy -c / nginx -t) on the result and report its verdict')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr; no progress bars')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr; no progress bars')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'fleetctl;lb;gen-nginx' {
            [CompletionResult]::new('--node', '--node', [CompletionResultType]::ParameterName, 'A backend node as HOST:PORT or [IPV6]:PORT; repeat for each node (default: the live registry)')
            [CompletionResult]::new('--server', '--server', [CompletionResultType]::ParameterName, 'Ask this node over HTTP instead of reading the backend named in the config')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Admin API token for --server')
            [CompletionResult]::new('--ca-file', '--ca-file', [CompletionResultType]::ParameterName, 'Trust only the CA certificates in this PEM file for an https:// --server')
            [CompletionResult]::new('--bind', '--bind', [CompletionResultType]::ParameterName, 'Address the load balancer listens on [default: 0.0.0.0:80, or 0.0.0.0:443 with --tls-cert]')
            [CompletionResult]::new('--tls-cert', '--tls-cert', [CompletionResultType]::ParameterName, 'Terminate TLS with this certificate (HAProxy: one PEM holding certificate and key)')
            [CompletionResult]::new('--tls-key', '--tls-key', [CompletionResultType]::ParameterName, 'nginx: the private key for --tls-cert [default: the --tls-cert file]')
            [CompletionResult]::new('--node-ca-file', '--node-ca-file', [CompletionResultType]::ParameterName, 'Speak TLS to the nodes (they serve `server.tls`) and verify their certificates against this PEM CA file; nodes from the registry must then advertise https:// URLs')
            [CompletionResult]::new('--node-tls-name', '--node-tls-name', [CompletionResultType]::ParameterName, 'The name every node''s certificate carries, sent as SNI and checked [default: HAProxy checks each node''s DNS name (IP addresses: chain only); nginx needs one common name]')
            [CompletionResult]::new('--node-client-cert', '--node-client-cert', [CompletionResultType]::ParameterName, 'Client certificate the LB presents to nodes with `server.tls.client_ca` (HAProxy: one PEM holding certificate and key)')
            [CompletionResult]::new('--node-client-key', '--node-client-key', [CompletionResultType]::ParameterName, 'nginx: the private key for --node-client-cert [default: the --node-client-cert file]')
            [CompletionResult]::new('--balance', '--balance', [CompletionResultType]::ParameterName, 'How requests are spread over the nodes')
            [CompletionResult]::new('--check-interval', '--check-interval', [CompletionResultType]::ParameterName, 'Time between health checks (HAProxy); nginx''s fail_timeout is this × --fall')
            [CompletionResult]::new('--fall', '--fall', [CompletionResultType]::ParameterName, 'Failed checks (nginx: failed requests) before a node is taken out')
            [CompletionResult]::new('--rise', '--rise', [CompletionResultType]::ParameterName, 'Passed checks before a node is put back (HAProxy)')
            [CompletionResult]::new('--runtime-dir', '--runtime-dir', [CompletionResultType]::ParameterName, 'Put pid file, logs, admin socket and temp files here instead of the distribution''s paths (/run, /var/log, /var/lib/nginx), to run the load balancer unprivileged')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Write to this file (atomically: a temp file in the same directory, then a rename) instead of stdout; with --check, a rejected config never replaces the file')
            [CompletionResult]::new('--out', '--out', [CompletionResultType]::ParameterName, 'Write to this file (atomically: a temp file in the same directory, then a rename) instead of stdout; with --check, a rejected config never replaces the file')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file [default: ./fleet.yaml if present, else the embedded standalone default]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; with json, stdout carries only JSON and messages go to stderr')
            [CompletionResult]::new('--fragment', '--fragment', [CompletionResultType]::ParameterName, 'Only the backend/upstream section, for inclusion in an existing config')
            [CompletionResult]::new('--check', '--check', [CompletionResultType]::ParameterName, 'Run the real validator (haproxy -c / nginx -t) on the result and report its verdict')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr; no progress bars')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr; no progress bars')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'fleetctl;lb;help' {
            [CompletionResult]::new('gen-haproxy', 'gen-haproxy', [CompletionResultType]::ParameterValue, 'Generate an HAProxy (2.6+) config that health-checks /api/fleet/cluster/health')
            [CompletionResult]::new('gen-nginx', 'gen-nginx', [CompletionResultType]::ParameterValue, 'Generate an nginx (OSS) config with passive health checks')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'fleetctl;lb;help;gen-haproxy' {
            break
        }
        'fleetctl;lb;help;gen-nginx' {
            break
        }
        'fleetctl;lb;help;help' {
            break
        }
        'fleetctl;users' {
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file [default: ./fleet.yaml if present, else the embedded standalone default]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; with json, stdout carries only JSON and messages go to stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr; no progress bars')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr; no progress bars')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('hash-password', 'hash-password', [CompletionResultType]::ParameterValue, 'Prompt for a password (twice, no echo) and print its argon2id hash for `auth.users`')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'fleetctl;users;hash-password' {
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file [default: ./fleet.yaml if present, else the embedded standalone default]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; with json, stdout carries only JSON and messages go to stderr')
            [CompletionResult]::new('--stdin', '--stdin', [CompletionResultType]::ParameterName, 'Read the password from one line of standard input instead of prompting (only the trailing newline is removed)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr; no progress bars')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr; no progress bars')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'fleetctl;users;help' {
            [CompletionResult]::new('hash-password', 'hash-password', [CompletionResultType]::ParameterValue, 'Prompt for a password (twice, no echo) and print its argon2id hash for `auth.users`')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'fleetctl;users;help;hash-password' {
            break
        }
        'fleetctl;users;help;help' {
            break
        }
        'fleetctl;keys' {
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file [default: ./fleet.yaml if present, else the embedded standalone default]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; with json, stdout carries only JSON and messages go to stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr; no progress bars')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr; no progress bars')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('new', 'new', [CompletionResultType]::ParameterValue, 'Mint an agent API key or admin token (printed once, with the config entry holding only its SHA-256), or an encryption key line')
            [CompletionResult]::new('rotate-encryption', 'rotate-encryption', [CompletionResultType]::ParameterValue, 'Re-seal every session record and stored report with the first key of security.encryption_key_file')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'fleetctl;keys;new' {
            [CompletionResult]::new('--name', '--name', [CompletionResultType]::ParameterName, 'A name for the key, e.g. the group of machines that will use it (letters, digits, `.`, `_`, `-`)')
            [CompletionResult]::new('--kind', '--kind', [CompletionResultType]::ParameterName, 'Mint an agent API key, an admin token, a /metrics scrape token or an encryption key line')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file [default: ./fleet.yaml if present, else the embedded standalone default]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; with json, stdout carries only JSON and messages go to stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr; no progress bars')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr; no progress bars')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'fleetctl;keys;rotate-encryption' {
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file [default: ./fleet.yaml if present, else the embedded standalone default]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; with json, stdout carries only JSON and messages go to stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr; no progress bars')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr; no progress bars')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'fleetctl;keys;help' {
            [CompletionResult]::new('new', 'new', [CompletionResultType]::ParameterValue, 'Mint an agent API key or admin token (printed once, with the config entry holding only its SHA-256), or an encryption key line')
            [CompletionResult]::new('rotate-encryption', 'rotate-encryption', [CompletionResultType]::ParameterValue, 'Re-seal every session record and stored report with the first key of security.encryption_key_file')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'fleetctl;keys;help;new' {
            break
        }
        'fleetctl;keys;help;rotate-encryption' {
            break
        }
        'fleetctl;keys;help;help' {
            break
        }
        'fleetctl;migrate' {
            [CompletionResult]::new('--from', '--from', [CompletionResultType]::ParameterName, 'Config whose backends hold the data now (the one the old nodes run with)')
            [CompletionResult]::new('--to', '--to', [CompletionResultType]::ParameterName, 'Config whose backends receive the data')
            [CompletionResult]::new('--batch-size', '--batch-size', [CompletionResultType]::ParameterName, 'Records per batch (and per checkpoint)')
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'Checkpoint file [default: <NEW.yaml>.migrate-state.json next to the --to config]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file [default: ./fleet.yaml if present, else the embedded standalone default]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; with json, stdout carries only JSON and messages go to stderr')
            [CompletionResult]::new('--restart', '--restart', [CompletionResultType]::ParameterName, 'Ignore an unfinished checkpoint and copy from the start')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Print how many records each keyspace would copy; write nothing')
            [CompletionResult]::new('--verify-only', '--verify-only', [CompletionResultType]::ParameterName, 'Only compare both sides (counts and checksums); copy nothing')
            [CompletionResult]::new('--live', '--live', [CompletionResultType]::ParameterName, 'The --to stores already serve: newer records there are expected, so verification fails only for --from records missing or older on the --to side')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr; no progress bars')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr; no progress bars')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'fleetctl;agent' {
            [CompletionResult]::new('--server', '--server', [CompletionResultType]::ParameterName, 'Fleet server or load balancer URL; repeat or comma-separate for several [default: agent.server from the config]')
            [CompletionResult]::new('--ca-file', '--ca-file', [CompletionResultType]::ParameterName, 'Trust only the CA certificates in this PEM file for https:// servers [default: agent.ca_file; else the system''s CAs]')
            [CompletionResult]::new('--api-key-file', '--api-key-file', [CompletionResultType]::ParameterName, 'File holding the agent API key (`fleet_…`) [default: agent.api_key_file]')
            [CompletionResult]::new('--interval', '--interval', [CompletionResultType]::ParameterName, 'Time between reports, e.g. 10s, 1m [default: agent.interval, 10s]')
            [CompletionResult]::new('--machine-id', '--machine-id', [CompletionResultType]::ParameterName, 'Machine id to report as [default: /etc/machine-id, else the hostname]')
            [CompletionResult]::new('--buffer', '--buffer', [CompletionResultType]::ParameterName, 'Reports kept while no server answers (oldest dropped first)')
            [CompletionResult]::new('--simulate', '--simulate', [CompletionResultType]::ParameterName, 'Simulate N virtual machines with realistic, varying metrics instead of this host')
            [CompletionResult]::new('--duration', '--duration', [CompletionResultType]::ParameterName, 'Stop after this long (e.g. 60s) instead of running until stopped')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file [default: ./fleet.yaml if present, else the embedded standalone default]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; with json, stdout carries only JSON and messages go to stderr')
            [CompletionResult]::new('--once', '--once', [CompletionResultType]::ParameterName, 'Collect one report, print it and exit without sending')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr; no progress bars')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr; no progress bars')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'fleetctl;completions' {
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file [default: ./fleet.yaml if present, else the embedded standalone default]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; with json, stdout carries only JSON and messages go to stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr; no progress bars')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr; no progress bars')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'fleetctl;man' {
            [CompletionResult]::new('--dir', '--dir', [CompletionResultType]::ParameterName, 'Directory to write the pages into')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file [default: ./fleet.yaml if present, else the embedded standalone default]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; with json, stdout carries only JSON and messages go to stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr; no progress bars')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr; no progress bars')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'fleetctl;help' {
            [CompletionResult]::new('serve', 'serve', [CompletionResultType]::ParameterValue, 'Run a server node: agent API, fleet API, dashboard and cluster endpoints')
            [CompletionResult]::new('cluster', 'cluster', [CompletionResultType]::ParameterValue, 'Inspect the cluster as a whole')
            [CompletionResult]::new('nodes', 'nodes', [CompletionResultType]::ParameterValue, 'List, drain, undrain or remove cluster nodes')
            [CompletionResult]::new('sessions', 'sessions', [CompletionResultType]::ParameterValue, 'Garbage-collect, list and revoke login sessions')
            [CompletionResult]::new('config', 'config', [CompletionResultType]::ParameterValue, 'Validate, create or print the config file')
            [CompletionResult]::new('lb', 'lb', [CompletionResultType]::ParameterValue, 'Generate load-balancer configs for the cluster')
            [CompletionResult]::new('users', 'users', [CompletionResultType]::ParameterValue, 'Manage dashboard users')
            [CompletionResult]::new('keys', 'keys', [CompletionResultType]::ParameterValue, 'Manage agent API keys')
            [CompletionResult]::new('migrate', 'migrate', [CompletionResultType]::ParameterValue, 'Copy sessions, API key usage and fleet data to the backends of another config')
            [CompletionResult]::new('agent', 'agent', [CompletionResultType]::ParameterValue, 'Collect this host''s metrics and report them to the fleet server')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script')
            [CompletionResult]::new('man', 'man', [CompletionResultType]::ParameterValue, 'Write man pages, one per subcommand')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'fleetctl;help;serve' {
            break
        }
        'fleetctl;help;cluster' {
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'Show every node, its state, the leader and the backend''s health')
            break
        }
        'fleetctl;help;cluster;status' {
            break
        }
        'fleetctl;help;nodes' {
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List the registered nodes with their state and last heartbeat')
            [CompletionResult]::new('drain', 'drain', [CompletionResultType]::ParameterValue, 'Put a node into draining: its health check fails so load balancers stop sending work')
            [CompletionResult]::new('undrain', 'undrain', [CompletionResultType]::ParameterValue, 'Take a node out of draining')
            [CompletionResult]::new('remove', 'remove', [CompletionResultType]::ParameterValue, 'Forget a node in the registry (refuses an active node without --force)')
            break
        }
        'fleetctl;help;nodes;list' {
            break
        }
        'fleetctl;help;nodes;drain' {
            break
        }
        'fleetctl;help;nodes;undrain' {
            break
        }
        'fleetctl;help;nodes;remove' {
            break
        }
        'fleetctl;help;sessions' {
            [CompletionResult]::new('gc', 'gc', [CompletionResultType]::ParameterValue, 'Delete expired sessions (SQLite and file stores; Redis expires them itself)')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List live sessions')
            [CompletionResult]::new('revoke', 'revoke', [CompletionResultType]::ParameterValue, 'End sessions on every node at once')
            break
        }
        'fleetctl;help;sessions;gc' {
            break
        }
        'fleetctl;help;sessions;list' {
            break
        }
        'fleetctl;help;sessions;revoke' {
            break
        }
        'fleetctl;help;config' {
            [CompletionResult]::new('validate', 'validate', [CompletionResultType]::ParameterValue, 'Check a config file and report every problem with file:line:column')
            [CompletionResult]::new('init', 'init', [CompletionResultType]::ParameterValue, 'Write a new config file by answering a few questions')
            [CompletionResult]::new('show', 'show', [CompletionResultType]::ParameterValue, 'Print the effective config (file, defaults and environment), secrets redacted')
            break
        }
        'fleetctl;help;config;validate' {
            break
        }
        'fleetctl;help;config;init' {
            break
        }
        'fleetctl;help;config;show' {
            break
        }
        'fleetctl;help;lb' {
            [CompletionResult]::new('gen-haproxy', 'gen-haproxy', [CompletionResultType]::ParameterValue, 'Generate an HAProxy (2.6+) config that health-checks /api/fleet/cluster/health')
            [CompletionResult]::new('gen-nginx', 'gen-nginx', [CompletionResultType]::ParameterValue, 'Generate an nginx (OSS) config with passive health checks')
            break
        }
        'fleetctl;help;lb;gen-haproxy' {
            break
        }
        'fleetctl;help;lb;gen-nginx' {
            break
        }
        'fleetctl;help;users' {
            [CompletionResult]::new('hash-password', 'hash-password', [CompletionResultType]::ParameterValue, 'Prompt for a password (twice, no echo) and print its argon2id hash for `auth.users`')
            break
        }
        'fleetctl;help;users;hash-password' {
            break
        }
        'fleetctl;help;keys' {
            [CompletionResult]::new('new', 'new', [CompletionResultType]::ParameterValue, 'Mint an agent API key or admin token (printed once, with the config entry holding only its SHA-256), or an encryption key line')
            [CompletionResult]::new('rotate-encryption', 'rotate-encryption', [CompletionResultType]::ParameterValue, 'Re-seal every session record and stored report with the first key of security.encryption_key_file')
            break
        }
        'fleetctl;help;keys;new' {
            break
        }
        'fleetctl;help;keys;rotate-encryption' {
            break
        }
        'fleetctl;help;migrate' {
            break
        }
        'fleetctl;help;agent' {
            break
        }
        'fleetctl;help;completions' {
            break
        }
        'fleetctl;help;man' {
            break
        }
        'fleetctl;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
