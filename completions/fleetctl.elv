
use builtin;
use str;

set edit:completion:arg-completer[fleetctl] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'fleetctl'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'fleetctl'= {
            cand --config 'Config file [default: ./fleet.yaml if present, else the embedded standalone default]'
            cand --output 'Output format; with json, stdout carries only JSON and messages go to stderr'
            cand -v 'More log output (-v info, -vv debug, -vvv trace)'
            cand --verbose 'More log output (-v info, -vv debug, -vvv trace)'
            cand -q 'Only errors on stderr; no progress bars'
            cand --quiet 'Only errors on stderr; no progress bars'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
            cand serve 'Run a server node: agent API, fleet API, dashboard and cluster endpoints'
            cand cluster 'Inspect the cluster as a whole'
            cand nodes 'List, drain, undrain or remove cluster nodes'
            cand sessions 'Garbage-collect, list and revoke login sessions'
            cand config 'Validate, create or print the config file'
            cand lb 'Generate load-balancer configs for the cluster'
            cand users 'Manage dashboard users'
            cand keys 'Manage agent API keys'
            cand migrate 'Copy sessions, API key usage and fleet data to the backends of another config'
            cand agent 'Collect this host''s metrics and report them to the fleet server'
            cand completions 'Print a shell completion script'
            cand man 'Write man pages, one per subcommand'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'fleetctl;serve'= {
            cand --host 'Address to listen on, overriding `server.host`'
            cand --port 'Port to listen on, overriding `server.port` (0 picks a free port)'
            cand --node-id 'Node id, overriding `cluster.node_id` [default: <hostname>-<6 random chars>]'
            cand --config 'Config file [default: ./fleet.yaml if present, else the embedded standalone default]'
            cand --output 'Output format; with json, stdout carries only JSON and messages go to stderr'
            cand -v 'More log output (-v info, -vv debug, -vvv trace)'
            cand --verbose 'More log output (-v info, -vv debug, -vvv trace)'
            cand -q 'Only errors on stderr; no progress bars'
            cand --quiet 'Only errors on stderr; no progress bars'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'fleetctl;cluster'= {
            cand --config 'Config file [default: ./fleet.yaml if present, else the embedded standalone default]'
            cand --output 'Output format; with json, stdout carries only JSON and messages go to stderr'
            cand -v 'More log output (-v info, -vv debug, -vvv trace)'
            cand --verbose 'More log output (-v info, -vv debug, -vvv trace)'
            cand -q 'Only errors on stderr; no progress bars'
            cand --quiet 'Only errors on stderr; no progress bars'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
            cand status 'Show every node, its state, the leader and the backend''s health'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'fleetctl;cluster;status'= {
            cand --server 'Ask this node over HTTP instead of reading the backend named in the config'
            cand --token 'Admin API token for --server'
            cand --ca-file 'Trust only the CA certificates in this PEM file for an https:// --server'
            cand --min-active 'Exit 3 when fewer than N nodes are active'
            cand --interval 'Seconds between redraws with --watch'
            cand --format 'Print a monitoring-plugin status line and exit 0/1/2/3 (OK/WARNING/CRITICAL/UNKNOWN)'
            cand --warning 'With --format nagios: WARNING when the active nodes fall outside this range; N means "at least N" (N:) [default: every node that has not left]'
            cand --critical 'With --format nagios: CRITICAL when the active nodes fall outside this range [default: 1]'
            cand --config 'Config file [default: ./fleet.yaml if present, else the embedded standalone default]'
            cand --output 'Output format; with json, stdout carries only JSON and messages go to stderr'
            cand --watch 'Redraw the status every few seconds until interrupted'
            cand -v 'More log output (-v info, -vv debug, -vvv trace)'
            cand --verbose 'More log output (-v info, -vv debug, -vvv trace)'
            cand -q 'Only errors on stderr; no progress bars'
            cand --quiet 'Only errors on stderr; no progress bars'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'fleetctl;cluster;help'= {
            cand status 'Show every node, its state, the leader and the backend''s health'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'fleetctl;cluster;help;status'= {
        }
        &'fleetctl;cluster;help;help'= {
        }
        &'fleetctl;nodes'= {
            cand --config 'Config file [default: ./fleet.yaml if present, else the embedded standalone default]'
            cand --output 'Output format; with json, stdout carries only JSON and messages go to stderr'
            cand -v 'More log output (-v info, -vv debug, -vvv trace)'
            cand --verbose 'More log output (-v info, -vv debug, -vvv trace)'
            cand -q 'Only errors on stderr; no progress bars'
            cand --quiet 'Only errors on stderr; no progress bars'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
            cand list 'List the registered nodes with their state and last heartbeat'
            cand drain 'Put a node into draining: its health check fails so load balancers stop sending work'
            cand undrain 'Take a node out of draining'
            cand remove 'Forget a node in the registry (refuses an active node without --force)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'fleetctl;nodes;list'= {
            cand --server 'Ask this node over HTTP instead of reading the backend named in the config'
            cand --token 'Admin API token for --server'
            cand --ca-file 'Trust only the CA certificates in this PEM file for an https:// --server'
            cand --config 'Config file [default: ./fleet.yaml if present, else the embedded standalone default]'
            cand --output 'Output format; with json, stdout carries only JSON and messages go to stderr'
            cand -v 'More log output (-v info, -vv debug, -vvv trace)'
            cand --verbose 'More log output (-v info, -vv debug, -vvv trace)'
            cand -q 'Only errors on stderr; no progress bars'
            cand --quiet 'Only errors on stderr; no progress bars'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'fleetctl;nodes;drain'= {
            cand --server 'Ask this node over HTTP instead of reading the backend named in the config'
            cand --token 'Admin API token for --server'
            cand --ca-file 'Trust only the CA certificates in this PEM file for an https:// --server'
            cand --config 'Config file [default: ./fleet.yaml if present, else the embedded standalone default]'
            cand --output 'Output format; with json, stdout carries only JSON and messages go to stderr'
            cand -v 'More log output (-v info, -vv debug, -vvv trace)'
            cand --verbose 'More log output (-v info, -vv debug, -vvv trace)'
            cand -q 'Only errors on stderr; no progress bars'
            cand --quiet 'Only errors on stderr; no progress bars'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'fleetctl;nodes;undrain'= {
            cand --server 'Ask this node over HTTP instead of reading the backend named in the config'
            cand --token 'Admin API token for --server'
            cand --ca-file 'Trust only the CA certificates in this PEM file for an https:// --server'
            cand --config 'Config file [default: ./fleet.yaml if present, else the embedded standalone default]'
            cand --output 'Output format; with json, stdout carries only JSON and messages go to stderr'
            cand -v 'More log output (-v info, -vv debug, -vvv trace)'
            cand --verbose 'More log output (-v info, -vv debug, -vvv trace)'
            cand -q 'Only errors on stderr; no progress bars'
            cand --quiet 'Only errors on stderr; no progress bars'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'fleetctl;nodes;remove'= {
            cand --server 'Ask this node over HTTP instead of reading the backend named in the config'
            cand --token 'Admin API token for --server'
            cand --ca-file 'Trust only the CA certificates in this PEM file for an https:// --server'
            cand --config 'Config file [default: ./fleet.yaml if present, else the embedded standalone default]'
            cand --output 'Output format; with json, stdout carries only JSON and messages go to stderr'
            cand --force 'Remove the node even if it is still active'
            cand -v 'More log output (-v info, -vv debug, -vvv trace)'
            cand --verbose 'More log output (-v info, -vv debug, -vvv trace)'
            cand -q 'Only errors on stderr; no progress bars'
            cand --quiet 'Only errors on stderr; no progress bars'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'fleetctl;nodes;help'= {
            cand list 'List the registered nodes with their state and last heartbeat'
            cand drain 'Put a node into draining: its health check fails so load balancers stop sending work'
            cand undrain 'Take a node out of draining'
            cand remove 'Forget a node in the registry (refuses an active node without --force)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'fleetctl;nodes;help;list'= {
        }
        &'fleetctl;nodes;help;drain'= {
        }
        &'fleetctl;nodes;help;undrain'= {
        }
        &'fleetctl;nodes;help;remove'= {
        }
        &'fleetctl;nodes;help;help'= {
        }
        &'fleetctl;sessions'= {
            cand --config 'Config file [default: ./fleet.yaml if present, else the embedded standalone default]'
            cand --output 'Output format; with json, stdout carries only JSON and messages go to stderr'
            cand -v 'More log output (-v info, -vv debug, -vvv trace)'
            cand --verbose 'More log output (-v info, -vv debug, -vvv trace)'
            cand -q 'Only errors on stderr; no progress bars'
            cand --quiet 'Only errors on stderr; no progress bars'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
            cand gc 'Delete expired sessions (SQLite and file stores; Redis expires them itself)'
            cand list 'List live sessions'
            cand revoke 'End sessions on every node at once'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'fleetctl;sessions;gc'= {
            cand --config 'Config file [default: ./fleet.yaml if present, else the embedded standalone default]'
            cand --output 'Output format; with json, stdout carries only JSON and messages go to stderr'
            cand -v 'More log output (-v info, -vv debug, -vvv trace)'
            cand --verbose 'More log output (-v info, -vv debug, -vvv trace)'
            cand -q 'Only errors on stderr; no progress bars'
            cand --quiet 'Only errors on stderr; no progress bars'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'fleetctl;sessions;list'= {
            cand --user 'Only this user''s sessions'
            cand --config 'Config file [default: ./fleet.yaml if present, else the embedded standalone default]'
            cand --output 'Output format; with json, stdout carries only JSON and messages go to stderr'
            cand -v 'More log output (-v info, -vv debug, -vvv trace)'
            cand --verbose 'More log output (-v info, -vv debug, -vvv trace)'
            cand -q 'Only errors on stderr; no progress bars'
            cand --quiet 'Only errors on stderr; no progress bars'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'fleetctl;sessions;revoke'= {
            cand --user 'Revoke every session of this user'
            cand --config 'Config file [default: ./fleet.yaml if present, else the embedded standalone default]'
            cand --output 'Output format; with json, stdout carries only JSON and messages go to stderr'
            cand --all 'Revoke every session of every user'
            cand -v 'More log output (-v info, -vv debug, -vvv trace)'
            cand --verbose 'More log output (-v info, -vv debug, -vvv trace)'
            cand -q 'Only errors on stderr; no progress bars'
            cand --quiet 'Only errors on stderr; no progress bars'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'fleetctl;sessions;help'= {
            cand gc 'Delete expired sessions (SQLite and file stores; Redis expires them itself)'
            cand list 'List live sessions'
            cand revoke 'End sessions on every node at once'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'fleetctl;sessions;help;gc'= {
        }
        &'fleetctl;sessions;help;list'= {
        }
        &'fleetctl;sessions;help;revoke'= {
        }
        &'fleetctl;sessions;help;help'= {
        }
        &'fleetctl;config'= {
            cand --config 'Config file [default: ./fleet.yaml if present, else the embedded standalone default]'
            cand --output 'Output format; with json, stdout carries only JSON and messages go to stderr'
            cand -v 'More log output (-v info, -vv debug, -vvv trace)'
            cand --verbose 'More log output (-v info, -vv debug, -vvv trace)'
            cand -q 'Only errors on stderr; no progress bars'
            cand --quiet 'Only errors on stderr; no progress bars'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
            cand validate 'Check a config file and report every problem with file:line:column'
            cand init 'Write a new config file by answering a few questions'
            cand show 'Print the effective config (file, defaults and environment), secrets redacted'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'fleetctl;config;validate'= {
            cand --config 'Config file [default: ./fleet.yaml if present, else the embedded standalone default]'
            cand --output 'Output format; with json, stdout carries only JSON and messages go to stderr'
            cand -v 'More log output (-v info, -vv debug, -vvv trace)'
            cand --verbose 'More log output (-v info, -vv debug, -vvv trace)'
            cand -q 'Only errors on stderr; no progress bars'
            cand --quiet 'Only errors on stderr; no progress bars'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'fleetctl;config;init'= {
            cand --config 'Config file [default: ./fleet.yaml if present, else the embedded standalone default]'
            cand --output 'Output format; with json, stdout carries only JSON and messages go to stderr'
            cand --force 'Overwrite the file if it exists'
            cand -v 'More log output (-v info, -vv debug, -vvv trace)'
            cand --verbose 'More log output (-v info, -vv debug, -vvv trace)'
            cand -q 'Only errors on stderr; no progress bars'
            cand --quiet 'Only errors on stderr; no progress bars'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'fleetctl;config;show'= {
            cand --config 'Config file [default: ./fleet.yaml if present, else the embedded standalone default]'
            cand --output 'Output format; with json, stdout carries only JSON and messages go to stderr'
            cand -v 'More log output (-v info, -vv debug, -vvv trace)'
            cand --verbose 'More log output (-v info, -vv debug, -vvv trace)'
            cand -q 'Only errors on stderr; no progress bars'
            cand --quiet 'Only errors on stderr; no progress bars'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'fleetctl;config;help'= {
            cand validate 'Check a config file and report every problem with file:line:column'
            cand init 'Write a new config file by answering a few questions'
            cand show 'Print the effective config (file, defaults and environment), secrets redacted'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'fleetctl;config;help;validate'= {
        }
        &'fleetctl;config;help;init'= {
        }
        &'fleetctl;config;help;show'= {
        }
        &'fleetctl;config;help;help'= {
        }
        &'fleetctl;lb'= {
            cand --config 'Config file [default: ./fleet.yaml if present, else the embedded standalone default]'
            cand --output 'Output format; with json, stdout carries only JSON and messages go to stderr'
            cand -v 'More log output (-v info, -vv debug, -vvv trace)'
            cand --verbose 'More log output (-v info, -vv debug, -vvv trace)'
            cand -q 'Only errors on stderr; no progress bars'
            cand --quiet 'Only errors on stderr; no progress bars'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
            cand gen-haproxy 'Generate an HAProxy (2.6+) config that health-checks /api/fleet/cluster/health'
            cand gen-nginx 'Generate an nginx (OSS) config with passive health checks'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'fleetctl;lb;gen-haproxy'= {
            cand --node 'A backend node as HOST:PORT or [IPV6]:PORT; repeat for each node (default: the live registry)'
            cand --server 'Ask this node over HTTP instead of reading the backend named in the config'
            cand --token 'Admin API token for --server'
            cand --ca-file 'Trust only the CA certificates in this PEM file for an https:// --server'
            cand --bind 'Address the load balancer listens on [default: 0.0.0.0:80, or 0.0.0.0:443 with --tls-cert]'
            cand --tls-cert 'Terminate TLS with this certificate (HAProxy: one PEM holding certificate and key)'
            cand --tls-key 'nginx: the private key for --tls-cert [default: the --tls-cert file]'
            cand --node-ca-file 'Speak TLS to the nodes (they serve `server.tls`) and verify their certificates against this PEM CA file; nodes from the registry must then advertise https:// URLs'
            cand --node-tls-name 'The name every node''s certificate carries, sent as SNI and checked [default: HAProxy checks each node''s DNS name (IP addresses: chain only); nginx needs one common name]'
            cand --node-client-cert 'Client certificate the LB presents to nodes with `server.tls.client_ca` (HAProxy: one PEM holding certificate and key)'
            cand --node-client-key 'nginx: the private key for --node-client-cert [default: the --node-client-cert file]'
            cand --balance 'How requests are spread over the nodes'
            cand --check-interval 'Time between health checks (HAProxy); nginx''s fail_timeout is this × --fall'
            cand --fall 'Failed checks (nginx: failed requests) before a node is taken out'
            cand --rise 'Passed checks before a node is put back (HAProxy)'
            cand --runtime-dir 'Put pid file, logs, admin socket and temp files here instead of the distribution''s paths (/run, /var/log, /var/lib/nginx), to run the load balancer unprivileged'
            cand -o 'Write to this file (atomically: a temp file in the same directory, then a rename) instead of stdout; with --check, a rejected config never replaces the file'
            cand --out 'Write to this file (atomically: a temp file in the same directory, then a rename) instead of stdout; with --check, a rejected config never replaces the file'
            cand --config 'Config file [default: ./fleet.yaml if present, else the embedded standalone default]'
            cand --output 'Output format; with json, stdout carries only JSON and messages go to stderr'
            cand --fragment 'Only the backend/upstream section, for inclusion in an existing config'
            cand --check 'Run the real validator (haproxy -c / nginx -t) on the result and report its verdict'
            cand -v 'More log output (-v info, -vv debug, -vvv trace)'
            cand --verbose 'More log output (-v info, -vv debug, -vvv trace)'
            cand -q 'Only errors on stderr; no progress bars'
            cand --quiet 'Only errors on stderr; no progress bars'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'fleetctl;lb;gen-nginx'= {
            cand --node 'A backend node as HOST:PORT or [IPV6]:PORT; repeat for each node (default: the live registry)'
            cand --server 'Ask this node over HTTP instead of reading the backend named in the config'
            cand --token 'Admin API token for --server'
            cand --ca-file 'Trust only the CA certificates in this PEM file for an https:// --server'
            cand --bind 'Address the load balancer listens on [default: 0.0.0.0:80, or 0.0.0.0:443 with --tls-cert]'
            cand --tls-cert 'Terminate TLS with this certificate (HAProxy: one PEM holding certificate and key)'
            cand --tls-key 'nginx: the private key for --tls-cert [default: the --tls-cert file]'
            cand --node-ca-file 'Speak TLS to the nodes (they serve `server.tls`) and verify their certificates against this PEM CA file; nodes from the registry must then advertise https:// URLs'
            cand --node-tls-name 'The name every node''s certificate carries, sent as SNI and checked [default: HAProxy checks each node''s DNS name (IP addresses: chain only); nginx needs one common name]'
            cand --node-client-cert 'Client certificate the LB presents to nodes with `server.tls.client_ca` (HAProxy: one PEM holding certificate and key)'
            cand --node-client-key 'nginx: the private key for --node-client-cert [default: the --node-client-cert file]'
            cand --balance 'How requests are spread over the nodes'
            cand --check-interval 'Time between health checks (HAProxy); nginx''s fail_timeout is this × --fall'
            cand --fall 'Failed checks (nginx: failed requests) before a node is taken out'
            cand --rise 'Passed checks before a node is put back (HAProxy)'
            cand --runtime-dir 'Put pid file, logs, admin socket and temp files here instead of the distribution''s paths (/run, /var/log, /var/lib/nginx), to run the load balancer unprivileged'
            cand -o 'Write to this file (atomically: a temp file in the same directory, then a rename) instead of stdout; with --check, a rejected config never replaces the file'
            cand --out 'Write to this file (atomically: a temp file in the same directory, then a rename) instead of stdout; with --check, a rejected config never replaces the file'
            cand --config 'Config file [default: ./fleet.yaml if present, else the embedded standalone default]'
            cand --output 'Output format; with json, stdout carries only JSON and messages go to stderr'
            cand --fragment 'Only the backend/upstream section, for inclusion in an existing config'
            cand --check 'Run the real validator (haproxy -c / nginx -t) on the result and report its verdict'
            cand -v 'More log output (-v info, -vv debug, -vvv trace)'
            cand --verbose 'More log output (-v info, -vv debug, -vvv trace)'
            cand -q 'Only errors on stderr; no progress bars'
            cand --quiet 'Only errors on stderr; no progress bars'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'fleetctl;lb;help'= {
            cand gen-haproxy 'Generate an HAProxy (2.6+) config that health-checks /api/fleet/cluster/health'
            cand gen-nginx 'Generate an nginx (OSS) config with passive health checks'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'fleetctl;lb;help;gen-haproxy'= {
        }
        &'fleetctl;lb;help;gen-nginx'= {
        }
        &'fleetctl;lb;help;help'= {
        }
        &'fleetctl;users'= {
            cand --config 'Config file [default: ./fleet.yaml if present, else the embedded standalone default]'
            cand --output 'Output format; with json, stdout carries only JSON and messages go to stderr'
            cand -v 'More log output (-v info, -vv debug, -vvv trace)'
            cand --verbose 'More log output (-v info, -vv debug, -vvv trace)'
            cand -q 'Only errors on stderr; no progress bars'
            cand --quiet 'Only errors on stderr; no progress bars'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
            cand hash-password 'Prompt for a password (twice, no echo) and print its argon2id hash for `auth.users`'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'fleetctl;users;hash-password'= {
            cand --config 'Config file [default: ./fleet.yaml if present, else the embedded standalone default]'
            cand --output 'Output format; with json, stdout carries only JSON and messages go to stderr'
            cand --stdin 'Read the password from one line of standard input instead of prompting (only the trailing newline is removed)'
            cand -v 'More log output (-v info, -vv debug, -vvv trace)'
            cand --verbose 'More log output (-v info, -vv debug, -vvv trace)'
            cand -q 'Only errors on stderr; no progress bars'
            cand --quiet 'Only errors on stderr; no progress bars'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'fleetctl;users;help'= {
            cand hash-password 'Prompt for a password (twice, no echo) and print its argon2id hash for `auth.users`'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'fleetctl;users;help;hash-password'= {
        }
        &'fleetctl;users;help;help'= {
        }
        &'fleetctl;keys'= {
            cand --config 'Config file [default: ./fleet.yaml if present, else the embedded standalone default]'
            cand --output 'Output format; with json, stdout carries only JSON and messages go to stderr'
            cand -v 'More log output (-v info, -vv debug, -vvv trace)'
            cand --verbose 'More log output (-v info, -vv debug, -vvv trace)'
            cand -q 'Only errors on stderr; no progress bars'
            cand --quiet 'Only errors on stderr; no progress bars'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
            cand new 'Mint an agent API key or admin token (printed once, with the config entry holding only its SHA-256), or an encryption key line'
            cand rotate-encryption 'Re-seal every session record and stored report with the first key of security.encryption_key_file'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'fleetctl;keys;new'= {
            cand --name 'A name for the key, e.g. the group of machines that will use it (letters, digits, `.`, `_`, `-`)'
            cand --kind 'Mint an agent API key, an admin token, a /metrics scrape token or an encryption key line'
            cand --config 'Config file [default: ./fleet.yaml if present, else the embedded standalone default]'
            cand --output 'Output format; with json, stdout carries only JSON and messages go to stderr'
            cand -v 'More log output (-v info, -vv debug, -vvv trace)'
            cand --verbose 'More log output (-v info, -vv debug, -vvv trace)'
            cand -q 'Only errors on stderr; no progress bars'
            cand --quiet 'Only errors on stderr; no progress bars'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'fleetctl;keys;rotate-encryption'= {
            cand --config 'Config file [default: ./fleet.yaml if present, else the embedded standalone default]'
            cand --output 'Output format; with json, stdout carries only JSON and messages go to stderr'
            cand -v 'More log output (-v info, -vv debug, -vvv trace)'
            cand --verbose 'More log output (-v info, -vv debug, -vvv trace)'
            cand -q 'Only errors on stderr; no progress bars'
            cand --quiet 'Only errors on stderr; no progress bars'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'fleetctl;keys;help'= {
            cand new 'Mint an agent API key or admin token (printed once, with the config entry holding only its SHA-256), or an encryption key line'
            cand rotate-encryption 'Re-seal every session record and stored report with the first key of security.encryption_key_file'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'fleetctl;keys;help;new'= {
        }
        &'fleetctl;keys;help;rotate-encryption'= {
        }
        &'fleetctl;keys;help;help'= {
        }
        &'fleetctl;migrate'= {
            cand --from 'Config whose backends hold the data now (the one the old nodes run with)'
            cand --to 'Config whose backends receive the data'
            cand --batch-size 'Records per batch (and per checkpoint)'
            cand --state 'Checkpoint file [default: <NEW.yaml>.migrate-state.json next to the --to config]'
            cand --config 'Config file [default: ./fleet.yaml if present, else the embedded standalone default]'
            cand --output 'Output format; with json, stdout carries only JSON and messages go to stderr'
            cand --restart 'Ignore an unfinished checkpoint and copy from the start'
            cand --dry-run 'Print how many records each keyspace would copy; write nothing'
            cand --verify-only 'Only compare both sides (counts and checksums); copy nothing'
            cand --live 'The --to stores already serve: newer records there are expected, so verification fails only for --from records missing or older on the --to side'
            cand -v 'More log output (-v info, -vv debug, -vvv trace)'
            cand --verbose 'More log output (-v info, -vv debug, -vvv trace)'
            cand -q 'Only errors on stderr; no progress bars'
            cand --quiet 'Only errors on stderr; no progress bars'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'fleetctl;agent'= {
            cand --server 'Fleet server or load balancer URL; repeat or comma-separate for several [default: agent.server from the config]'
            cand --ca-file 'Trust only the CA certificates in this PEM file for https:// servers [default: agent.ca_file; else the system''s CAs]'
            cand --api-key-file 'File holding the agent API key (`fleet_…`) [default: agent.api_key_file]'
            cand --interval 'Time between reports, e.g. 10s, 1m [default: agent.interval, 10s]'
            cand --machine-id 'Machine id to report as [default: /etc/machine-id, else the hostname]'
            cand --buffer 'Reports kept while no server answers (oldest dropped first)'
            cand --simulate 'Simulate N virtual machines with realistic, varying metrics instead of this host'
            cand --duration 'Stop after this long (e.g. 60s) instead of running until stopped'
            cand --config 'Config file [default: ./fleet.yaml if present, else the embedded standalone default]'
            cand --output 'Output format; with json, stdout carries only JSON and messages go to stderr'
            cand --once 'Collect one report, print it and exit without sending'
            cand -v 'More log output (-v info, -vv debug, -vvv trace)'
            cand --verbose 'More log output (-v info, -vv debug, -vvv trace)'
            cand -q 'Only errors on stderr; no progress bars'
            cand --quiet 'Only errors on stderr; no progress bars'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'fleetctl;completions'= {
            cand --config 'Config file [default: ./fleet.yaml if present, else the embedded standalone default]'
            cand --output 'Output format; with json, stdout carries only JSON and messages go to stderr'
            cand -v 'More log output (-v info, -vv debug, -vvv trace)'
            cand --verbose 'More log output (-v info, -vv debug, -vvv trace)'
            cand -q 'Only errors on stderr; no progress bars'
            cand --quiet 'Only errors on stderr; no progress bars'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'fleetctl;man'= {
            cand --dir 'Directory to write the pages into'
            cand --config 'Config file [default: ./fleet.yaml if present, else the embedded standalone default]'
            cand --output 'Output format; with json, stdout carries only JSON and messages go to stderr'
            cand -v 'More log output (-v info, -vv debug, -vvv trace)'
            cand --verbose 'More log output (-v info, -vv debug, -vvv trace)'
            cand -q 'Only errors on stderr; no progress bars'
            cand --quiet 'Only errors on stderr; no progress bars'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'fleetctl;help'= {
            cand serve 'Run a server node: agent API, fleet API, dashboard and cluster endpoints'
            cand cluster 'Inspect the cluster as a whole'
            cand nodes 'List, drain, undrain or remove cluster nodes'
            cand sessions 'Garbage-collect, list and revoke login sessions'
            cand config 'Validate, create or print the config file'
            cand lb 'Generate load-balancer configs for the cluster'
            cand users 'Manage dashboard users'
            cand keys 'Manage agent API keys'
            cand migrate 'Copy sessions, API key usage and fleet data to the backends of another config'
            cand agent 'Collect this host''s metrics and report them to the fleet server'
            cand completions 'Print a shell completion script'
            cand man 'Write man pages, one per subcommand'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'fleetctl;help;serve'= {
        }
        &'fleetctl;help;cluster'= {
            cand status 'Show every node, its state, the leader and the backend''s health'
        }
        &'fleetctl;help;cluster;status'= {
        }
        &'fleetctl;help;nodes'= {
            cand list 'List the registered nodes with their state and last heartbeat'
            cand drain 'Put a node into draining: its health check fails so load balancers stop sending work'
            cand undrain 'Take a node out of draining'
            cand remove 'Forget a node in the registry (refuses an active node without --force)'
        }
        &'fleetctl;help;nodes;list'= {
        }
        &'fleetctl;help;nodes;drain'= {
        }
        &'fleetctl;help;nodes;undrain'= {
        }
        &'fleetctl;help;nodes;remove'= {
        }
        &'fleetctl;help;sessions'= {
            cand gc 'Delete expired sessions (SQLite and file stores; Redis expires them itself)'
            cand list 'List live sessions'
            cand revoke 'End sessions on every node at once'
        }
        &'fleetctl;help;sessions;gc'= {
        }
        &'fleetctl;help;sessions;list'= {
        }
        &'fleetctl;help;sessions;revoke'= {
        }
        &'fleetctl;help;config'= {
            cand validate 'Check a config file and report every problem with file:line:column'
            cand init 'Write a new config file by answering a few questions'
            cand show 'Print the effective config (file, defaults and environment), secrets redacted'
        }
        &'fleetctl;help;config;validate'= {
        }
        &'fleetctl;help;config;init'= {
        }
        &'fleetctl;help;config;show'= {
        }
        &'fleetctl;help;lb'= {
            cand gen-haproxy 'Generate an HAProxy (2.6+) config that health-checks /api/fleet/cluster/health'
            cand gen-nginx 'Generate an nginx (OSS) config with passive health checks'
        }
        &'fleetctl;help;lb;gen-haproxy'= {
        }
        &'fleetctl;help;lb;gen-nginx'= {
        }
        &'fleetctl;help;users'= {
            cand hash-password 'Prompt for a password (twice, no echo) and print its argon2id hash for `auth.users`'
        }
        &'fleetctl;help;users;hash-password'= {
        }
        &'fleetctl;help;keys'= {
            cand new 'Mint an agent API key or admin token (printed once, with the config entry holding only its SHA-256), or an encryption key line'
            cand rotate-encryption 'Re-seal every session record and stored report with the first key of security.encryption_key_file'
        }
        &'fleetctl;help;keys;new'= {
        }
        &'fleetctl;help;keys;rotate-encryption'= {
        }
        &'fleetctl;help;migrate'= {
        }
        &'fleetctl;help;agent'= {
        }
        &'fleetctl;help;completions'= {
        }
        &'fleetctl;help;man'= {
        }
        &'fleetctl;help;help'= {
        }
    ]
    $completions[$command]
}
