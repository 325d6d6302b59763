# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_tsh_global_optspecs
    string join \n proxy= user= cluster= i/identity= insecure d/debug h/help
end

function __fish_tsh_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_tsh_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_tsh_using_subcommand
    set -l cmd (__fish_tsh_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c tsh -n "__fish_tsh_needs_command" -l proxy -d 'Proxy address, host[:port] (no port: 443, then 3080)' -r
complete -c tsh -n "__fish_tsh_needs_command" -l user -d 'Teleport user [default: the current profile\'s, else $USER]' -r
complete -c tsh -n "__fish_tsh_needs_command" -l cluster -d 'Cluster to act on (a leaf of the root you signed in to)' -r
complete -c tsh -n "__fish_tsh_needs_command" -s i -l identity -d 'Identity file (from \'tctl auth sign\') instead of a profile' -r -F
complete -c tsh -n "__fish_tsh_needs_command" -l insecure -d 'Do not verify the proxy\'s web certificate (testing only)'
complete -c tsh -n "__fish_tsh_needs_command" -s d -l debug -d 'Verbose output'
complete -c tsh -n "__fish_tsh_needs_command" -s h -l help -d 'Print help'
complete -c tsh -n "__fish_tsh_needs_command" -f -a "login" -d 'Sign in to a cluster (or select a leaf cluster: tsh login <cluster>)'
complete -c tsh -n "__fish_tsh_needs_command" -f -a "logout" -d 'Remove your keys and certificates'
complete -c tsh -n "__fish_tsh_needs_command" -f -a "status" -d 'Show who you are signed in as'
complete -c tsh -n "__fish_tsh_needs_command" -f -a "ls" -d 'List the nodes you can reach'
complete -c tsh -n "__fish_tsh_needs_command" -f -a "ssh" -d 'Run a shell or a command on a node'
complete -c tsh -n "__fish_tsh_needs_command" -f -a "scp" -d 'Copy files to or from a node (SFTP)'
complete -c tsh -n "__fish_tsh_needs_command" -f -a "clusters" -d 'List the root cluster and the leaf clusters you can reach'
complete -c tsh -n "__fish_tsh_needs_command" -f -a "version" -d 'Print the version'
complete -c tsh -n "__fish_tsh_needs_command" -f -a "config" -d 'Print an OpenSSH client configuration for the clusters you can reach'
complete -c tsh -n "__fish_tsh_needs_command" -f -a "proxy" -d 'Connect stdin/stdout to a node (OpenSSH ProxyCommand)'
complete -c tsh -n "__fish_tsh_needs_command" -f -a "completion" -d 'Print a shell completion script'
complete -c tsh -n "__fish_tsh_needs_command" -f -a "mfa" -d 'List, add and remove your second-factor (TOTP) devices'
complete -c tsh -n "__fish_tsh_needs_command" -f -a "access" -d 'Explain why a login is allowed or denied'
complete -c tsh -n "__fish_tsh_needs_command" -f -a "recordings" -d 'List recorded sessions'
complete -c tsh -n "__fish_tsh_needs_command" -f -a "play" -d 'Replay a recorded session'
complete -c tsh -n "__fish_tsh_needs_command" -f -a "sessions" -d 'List live sessions you may see or join'
complete -c tsh -n "__fish_tsh_needs_command" -f -a "join" -d 'Join a live session (watch it, or type too)'
complete -c tsh -n "__fish_tsh_needs_command" -f -a "kube" -d 'Kubernetes clusters: list them, log in to one, credentials for kubectl'
complete -c tsh -n "__fish_tsh_needs_command" -f -a "apps" -d 'Applications: list the ones you can reach'
complete -c tsh -n "__fish_tsh_needs_command" -f -a "db" -d 'Databases: list the ones you can reach'
complete -c tsh -n "__fish_tsh_needs_command" -f -a "request" -d 'Access requests: ask for roles for a while, review others\' requests'
complete -c tsh -n "__fish_tsh_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tsh -n "__fish_tsh_using_subcommand login" -l ttl -d 'Certificate TTL in minutes [default: 720, capped by your roles\' max_session_ttl]' -r
complete -c tsh -n "__fish_tsh_using_subcommand login" -l auth -d 'Sign in with this connector: an OIDC, GitHub or SAML connector\'s name, or local [default: the cluster\'s]' -r
complete -c tsh -n "__fish_tsh_using_subcommand login" -l browser -d 'Set to none to print the SSO link instead of opening a browser ($BROWSER, else xdg-open)' -r
complete -c tsh -n "__fish_tsh_using_subcommand login" -l bind-addr -d 'Address (loopback) tsh listens on for the SSO callback [default: 127.0.0.1:0]' -r
complete -c tsh -n "__fish_tsh_using_subcommand login" -l request-roles -d 'Request these roles (comma-separated) and wait for approval; the certificate then has them' -r
complete -c tsh -n "__fish_tsh_using_subcommand login" -l request-reason -d 'The reason for --request-roles' -r
complete -c tsh -n "__fish_tsh_using_subcommand login" -l request-id -d 'Use this approved access request: the certificate gains its roles until it expires' -r
complete -c tsh -n "__fish_tsh_using_subcommand login" -l proxy -d 'Proxy address, host[:port] (no port: 443, then 3080)' -r
complete -c tsh -n "__fish_tsh_using_subcommand login" -l user -d 'Teleport user [default: the current profile\'s, else $USER]' -r
complete -c tsh -n "__fish_tsh_using_subcommand login" -s i -l identity -d 'Identity file (from \'tctl auth sign\') instead of a profile' -r -F
complete -c tsh -n "__fish_tsh_using_subcommand login" -l insecure -d 'Do not verify the proxy\'s web certificate (testing only)'
complete -c tsh -n "__fish_tsh_using_subcommand login" -s d -l debug -d 'Verbose output'
complete -c tsh -n "__fish_tsh_using_subcommand login" -s h -l help -d 'Print help'
complete -c tsh -n "__fish_tsh_using_subcommand logout" -l proxy -d 'Proxy address, host[:port] (no port: 443, then 3080)' -r
complete -c tsh -n "__fish_tsh_using_subcommand logout" -l user -d 'Teleport user [default: the current profile\'s, else $USER]' -r
complete -c tsh -n "__fish_tsh_using_subcommand logout" -l cluster -d 'Cluster to act on (a leaf of the root you signed in to)' -r
complete -c tsh -n "__fish_tsh_using_subcommand logout" -s i -l identity -d 'Identity file (from \'tctl auth sign\') instead of a profile' -r -F
complete -c tsh -n "__fish_tsh_using_subcommand logout" -l insecure -d 'Do not verify the proxy\'s web certificate (testing only)'
complete -c tsh -n "__fish_tsh_using_subcommand logout" -s d -l debug -d 'Verbose output'
complete -c tsh -n "__fish_tsh_using_subcommand logout" -s h -l help -d 'Print help'
complete -c tsh -n "__fish_tsh_using_subcommand status" -s f -l format -d 'Output format: text, json or yaml' -r
complete -c tsh -n "__fish_tsh_using_subcommand status" -l proxy -d 'Proxy address, host[:port] (no port: 443, then 3080)' -r
complete -c tsh -n "__fish_tsh_using_subcommand status" -l user -d 'Teleport user [default: the current profile\'s, else $USER]' -r
complete -c tsh -n "__fish_tsh_using_subcommand status" -l cluster -d 'Cluster to act on (a leaf of the root you signed in to)' -r
complete -c tsh -n "__fish_tsh_using_subcommand status" -s i -l identity -d 'Identity file (from \'tctl auth sign\') instead of a profile' -r -F
complete -c tsh -n "__fish_tsh_using_subcommand status" -l insecure -d 'Do not verify the proxy\'s web certificate (testing only)'
complete -c tsh -n "__fish_tsh_using_subcommand status" -s d -l debug -d 'Verbose output'
complete -c tsh -n "__fish_tsh_using_subcommand status" -s h -l help -d 'Print help'
complete -c tsh -n "__fish_tsh_using_subcommand ls" -s f -l format -d 'Output format: text, json, yaml or names' -r
complete -c tsh -n "__fish_tsh_using_subcommand ls" -l proxy -d 'Proxy address, host[:port] (no port: 443, then 3080)' -r
complete -c tsh -n "__fish_tsh_using_subcommand ls" -l user -d 'Teleport user [default: the current profile\'s, else $USER]' -r
complete -c tsh -n "__fish_tsh_using_subcommand ls" -l cluster -d 'Cluster to act on (a leaf of the root you signed in to)' -r
complete -c tsh -n "__fish_tsh_using_subcommand ls" -s i -l identity -d 'Identity file (from \'tctl auth sign\') instead of a profile' -r -F
complete -c tsh -n "__fish_tsh_using_subcommand ls" -s R -l all -d 'List the nodes of the root and of every visible leaf (offline leaves are reported, not fatal)'
complete -c tsh -n "__fish_tsh_using_subcommand ls" -s v -l verbose -d 'Also show node IDs'
complete -c tsh -n "__fish_tsh_using_subcommand ls" -l insecure -d 'Do not verify the proxy\'s web certificate (testing only)'
complete -c tsh -n "__fish_tsh_using_subcommand ls" -s d -l debug -d 'Verbose output'
complete -c tsh -n "__fish_tsh_using_subcommand ls" -s h -l help -d 'Print help'
complete -c tsh -n "__fish_tsh_using_subcommand ssh" -s p -l port -d 'Node port' -r
complete -c tsh -n "__fish_tsh_using_subcommand ssh" -s l -l login -d 'Unix login [default: the part before @, else $USER]' -r
complete -c tsh -n "__fish_tsh_using_subcommand ssh" -s L -l forward -d 'Forward a local port to HOST:HOSTPORT, dialled from the node ([BIND:]PORT:HOST:HOSTPORT; repeatable)' -r
complete -c tsh -n "__fish_tsh_using_subcommand ssh" -s R -l remote-forward -d 'Forward a port on the node to HOST:HOSTPORT, dialled from here (port 0: any; repeatable)' -r
complete -c tsh -n "__fish_tsh_using_subcommand ssh" -s D -l dynamic-forward -d 'A SOCKS5 proxy here whose connections the node dials ([BIND:]PORT; repeatable)' -r
complete -c tsh -n "__fish_tsh_using_subcommand ssh" -s o -d 'OpenSSH options: ForwardAgent=yes|no, ServerAliveInterval=SECONDS, ExitOnForwardFailure=yes|no, StrictHostKeyChecking=yes' -r
complete -c tsh -n "__fish_tsh_using_subcommand ssh" -l proxy -d 'Proxy address, host[:port] (no port: 443, then 3080)' -r
complete -c tsh -n "__fish_tsh_using_subcommand ssh" -l user -d 'Teleport user [default: the current profile\'s, else $USER]' -r
complete -c tsh -n "__fish_tsh_using_subcommand ssh" -l cluster -d 'Cluster to act on (a leaf of the root you signed in to)' -r
complete -c tsh -n "__fish_tsh_using_subcommand ssh" -s i -l identity -d 'Identity file (from \'tctl auth sign\') instead of a profile' -r -F
complete -c tsh -n "__fish_tsh_using_subcommand ssh" -s t -l tty -d 'Allocate a terminal even when running a command'
complete -c tsh -n "__fish_tsh_using_subcommand ssh" -s T -d 'Never allocate a terminal'
complete -c tsh -n "__fish_tsh_using_subcommand ssh" -s A -l forward-agent -d 'Forward your SSH agent ($SSH_AUTH_SOCK) to the node'
complete -c tsh -n "__fish_tsh_using_subcommand ssh" -s N -l no-remote-exec -d 'Run no command: only forward (until Ctrl-C or the connection ends)'
complete -c tsh -n "__fish_tsh_using_subcommand ssh" -s f -l fork-after-authentication -d 'Go to the background once connected and the forwards are up'
complete -c tsh -n "__fish_tsh_using_subcommand ssh" -l insecure -d 'Do not verify the proxy\'s web certificate (testing only)'
complete -c tsh -n "__fish_tsh_using_subcommand ssh" -s d -l debug -d 'Verbose output'
complete -c tsh -n "__fish_tsh_using_subcommand ssh" -s h -l help -d 'Print help'
complete -c tsh -n "__fish_tsh_using_subcommand scp" -s P -l port -d 'Node port' -r
complete -c tsh -n "__fish_tsh_using_subcommand scp" -l proxy -d 'Proxy address, host[:port] (no port: 443, then 3080)' -r
complete -c tsh -n "__fish_tsh_using_subcommand scp" -l user -d 'Teleport user [default: the current profile\'s, else $USER]' -r
complete -c tsh -n "__fish_tsh_using_subcommand scp" -l cluster -d 'Cluster to act on (a leaf of the root you signed in to)' -r
complete -c tsh -n "__fish_tsh_using_subcommand scp" -s i -l identity -d 'Identity file (from \'tctl auth sign\') instead of a profile' -r -F
complete -c tsh -n "__fish_tsh_using_subcommand scp" -s r -l recursive -d 'Copy directories and what they hold'
complete -c tsh -n "__fish_tsh_using_subcommand scp" -s p -l preserve -d 'Keep modification times and modes'
complete -c tsh -n "__fish_tsh_using_subcommand scp" -s q -l quiet -d 'No progress bars'
complete -c tsh -n "__fish_tsh_using_subcommand scp" -l insecure -d 'Do not verify the proxy\'s web certificate (testing only)'
complete -c tsh -n "__fish_tsh_using_subcommand scp" -s d -l debug -d 'Verbose output'
complete -c tsh -n "__fish_tsh_using_subcommand scp" -s h -l help -d 'Print help'
complete -c tsh -n "__fish_tsh_using_subcommand clusters" -s f -l format -d 'Output format: text, json or yaml' -r
complete -c tsh -n "__fish_tsh_using_subcommand clusters" -l proxy -d 'Proxy address, host[:port] (no port: 443, then 3080)' -r
complete -c tsh -n "__fish_tsh_using_subcommand clusters" -l user -d 'Teleport user [default: the current profile\'s, else $USER]' -r
complete -c tsh -n "__fish_tsh_using_subcommand clusters" -l cluster -d 'Cluster to act on (a leaf of the root you signed in to)' -r
complete -c tsh -n "__fish_tsh_using_subcommand clusters" -s i -l identity -d 'Identity file (from \'tctl auth sign\') instead of a profile' -r -F
complete -c tsh -n "__fish_tsh_using_subcommand clusters" -l insecure -d 'Do not verify the proxy\'s web certificate (testing only)'
complete -c tsh -n "__fish_tsh_using_subcommand clusters" -s d -l debug -d 'Verbose output'
complete -c tsh -n "__fish_tsh_using_subcommand clusters" -s h -l help -d 'Print help'
complete -c tsh -n "__fish_tsh_using_subcommand version" -l proxy -d 'Proxy address, host[:port] (no port: 443, then 3080)' -r
complete -c tsh -n "__fish_tsh_using_subcommand version" -l user -d 'Teleport user [default: the current profile\'s, else $USER]' -r
complete -c tsh -n "__fish_tsh_using_subcommand version" -l cluster -d 'Cluster to act on (a leaf of the root you signed in to)' -r
complete -c tsh -n "__fish_tsh_using_subcommand version" -s i -l identity -d 'Identity file (from \'tctl auth sign\') instead of a profile' -r -F
complete -c tsh -n "__fish_tsh_using_subcommand version" -l insecure -d 'Do not verify the proxy\'s web certificate (testing only)'
complete -c tsh -n "__fish_tsh_using_subcommand version" -s d -l debug -d 'Verbose output'
complete -c tsh -n "__fish_tsh_using_subcommand version" -s h -l help -d 'Print help'
complete -c tsh -n "__fish_tsh_using_subcommand config" -l proxy -d 'Proxy address, host[:port] (no port: 443, then 3080)' -r
complete -c tsh -n "__fish_tsh_using_subcommand config" -l user -d 'Teleport user [default: the current profile\'s, else $USER]' -r
complete -c tsh -n "__fish_tsh_using_subcommand config" -l cluster -d 'Cluster to act on (a leaf of the root you signed in to)' -r
complete -c tsh -n "__fish_tsh_using_subcommand config" -s i -l identity -d 'Identity file (from \'tctl auth sign\') instead of a profile' -r -F
complete -c tsh -n "__fish_tsh_using_subcommand config" -l insecure -d 'Do not verify the proxy\'s web certificate (testing only)'
complete -c tsh -n "__fish_tsh_using_subcommand config" -s d -l debug -d 'Verbose output'
complete -c tsh -n "__fish_tsh_using_subcommand config" -s h -l help -d 'Print help'
complete -c tsh -n "__fish_tsh_using_subcommand proxy; and not __fish_seen_subcommand_from ssh app db help" -l proxy -d 'Proxy address, host[:port] (no port: 443, then 3080)' -r
complete -c tsh -n "__fish_tsh_using_subcommand proxy; and not __fish_seen_subcommand_from ssh app db help" -l user -d 'Teleport user [default: the current profile\'s, else $USER]' -r
complete -c tsh -n "__fish_tsh_using_subcommand proxy; and not __fish_seen_subcommand_from ssh app db help" -l cluster -d 'Cluster to act on (a leaf of the root you signed in to)' -r
complete -c tsh -n "__fish_tsh_using_subcommand proxy; and not __fish_seen_subcommand_from ssh app db help" -s i -l identity -d 'Identity file (from \'tctl auth sign\') instead of a profile' -r -F
complete -c tsh -n "__fish_tsh_using_subcommand proxy; and not __fish_seen_subcommand_from ssh app db help" -l insecure -d 'Do not verify the proxy\'s web certificate (testing only)'
complete -c tsh -n "__fish_tsh_using_subcommand proxy; and not __fish_seen_subcommand_from ssh app db help" -s d -l debug -d 'Verbose output'
complete -c tsh -n "__fish_tsh_using_subcommand proxy; and not __fish_seen_subcommand_from ssh app db help" -s h -l help -d 'Print help'
complete -c tsh -n "__fish_tsh_using_subcommand proxy; and not __fish_seen_subcommand_from ssh app db help" -f -a "ssh" -d 'Pipe stdin/stdout to a node\'s SSH port (for OpenSSH\'s ProxyCommand)'
complete -c tsh -n "__fish_tsh_using_subcommand proxy; and not __fish_seen_subcommand_from ssh app db help" -f -a "app" -d 'A local listener for an application that adds its certificate'
complete -c tsh -n "__fish_tsh_using_subcommand proxy; and not __fish_seen_subcommand_from ssh app db help" -f -a "db" -d 'A local listener for a database that adds its certificate'
complete -c tsh -n "__fish_tsh_using_subcommand proxy; and not __fish_seen_subcommand_from ssh app db help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tsh -n "__fish_tsh_using_subcommand proxy; and __fish_seen_subcommand_from ssh" -l proxy -d 'Proxy address, host[:port] (no port: 443, then 3080)' -r
complete -c tsh -n "__fish_tsh_using_subcommand proxy; and __fish_seen_subcommand_from ssh" -l user -d 'Teleport user [default: the current profile\'s, else $USER]' -r
complete -c tsh -n "__fish_tsh_using_subcommand proxy; and __fish_seen_subcommand_from ssh" -l cluster -d 'Cluster to act on (a leaf of the root you signed in to)' -r
complete -c tsh -n "__fish_tsh_using_subcommand proxy; and __fish_seen_subcommand_from ssh" -s i -l identity -d 'Identity file (from \'tctl auth sign\') instead of a profile' -r -F
complete -c tsh -n "__fish_tsh_using_subcommand proxy; and __fish_seen_subcommand_from ssh" -l insecure -d 'Do not verify the proxy\'s web certificate (testing only)'
complete -c tsh -n "__fish_tsh_using_subcommand proxy; and __fish_seen_subcommand_from ssh" -s d -l debug -d 'Verbose output'
complete -c tsh -n "__fish_tsh_using_subcommand proxy; and __fish_seen_subcommand_from ssh" -s h -l help -d 'Print help'
complete -c tsh -n "__fish_tsh_using_subcommand proxy; and __fish_seen_subcommand_from app" -s p -l port -d 'Local port (default: any free one, printed)' -r
complete -c tsh -n "__fish_tsh_using_subcommand proxy; and __fish_seen_subcommand_from app" -l proxy -d 'Proxy address, host[:port] (no port: 443, then 3080)' -r
complete -c tsh -n "__fish_tsh_using_subcommand proxy; and __fish_seen_subcommand_from app" -l user -d 'Teleport user [default: the current profile\'s, else $USER]' -r
complete -c tsh -n "__fish_tsh_using_subcommand proxy; and __fish_seen_subcommand_from app" -l cluster -d 'Cluster to act on (a leaf of the root you signed in to)' -r
complete -c tsh -n "__fish_tsh_using_subcommand proxy; and __fish_seen_subcommand_from app" -s i -l identity -d 'Identity file (from \'tctl auth sign\') instead of a profile' -r -F
complete -c tsh -n "__fish_tsh_using_subcommand proxy; and __fish_seen_subcommand_from app" -l insecure -d 'Do not verify the proxy\'s web certificate (testing only)'
complete -c tsh -n "__fish_tsh_using_subcommand proxy; and __fish_seen_subcommand_from app" -s d -l debug -d 'Verbose output'
complete -c tsh -n "__fish_tsh_using_subcommand proxy; and __fish_seen_subcommand_from app" -s h -l help -d 'Print help'
complete -c tsh -n "__fish_tsh_using_subcommand proxy; and __fish_seen_subcommand_from db" -s p -l port -d 'Local port (default: any free one, printed)' -r
complete -c tsh -n "__fish_tsh_using_subcommand proxy; and __fish_seen_subcommand_from db" -l db-user -d 'The database user, when logging in first' -r
complete -c tsh -n "__fish_tsh_using_subcommand proxy; and __fish_seen_subcommand_from db" -l db-name -d 'The database name, when logging in first' -r
complete -c tsh -n "__fish_tsh_using_subcommand proxy; and __fish_seen_subcommand_from db" -l proxy -d 'Proxy address, host[:port] (no port: 443, then 3080)' -r
complete -c tsh -n "__fish_tsh_using_subcommand proxy; and __fish_seen_subcommand_from db" -l user -d 'Teleport user [default: the current profile\'s, else $USER]' -r
complete -c tsh -n "__fish_tsh_using_subcommand proxy; and __fish_seen_subcommand_from db" -l cluster -d 'Cluster to act on (a leaf of the root you signed in to)' -r
complete -c tsh -n "__fish_tsh_using_subcommand proxy; and __fish_seen_subcommand_from db" -s i -l identity -d 'Identity file (from \'tctl auth sign\') instead of a profile' -r -F
complete -c tsh -n "__fish_tsh_using_subcommand proxy; and __fish_seen_subcommand_from db" -l tunnel -d 'Add the certificate for clients (what this listener always does; for Teleport\'s syntax)'
complete -c tsh -n "__fish_tsh_using_subcommand proxy; and __fish_seen_subcommand_from db" -l insecure -d 'Do not verify the proxy\'s web certificate (testing only)'
complete -c tsh -n "__fish_tsh_using_subcommand proxy; and __fish_seen_subcommand_from db" -s d -l debug -d 'Verbose output'
complete -c tsh -n "__fish_tsh_using_subcommand proxy; and __fish_seen_subcommand_from db" -s h -l help -d 'Print help'
complete -c tsh -n "__fish_tsh_using_subcommand proxy; and __fish_seen_subcommand_from help" -f -a "ssh" -d 'Pipe stdin/stdout to a node\'s SSH port (for OpenSSH\'s ProxyCommand)'
complete -c tsh -n "__fish_tsh_using_subcommand proxy; and __fish_seen_subcommand_from help" -f -a "app" -d 'A local listener for an application that adds its certificate'
complete -c tsh -n "__fish_tsh_using_subcommand proxy; and __fish_seen_subcommand_from help" -f -a "db" -d 'A local listener for a database that adds its certificate'
complete -c tsh -n "__fish_tsh_using_subcommand proxy; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tsh -n "__fish_tsh_using_subcommand completion" -l proxy -d 'Proxy address, host[:port] (no port: 443, then 3080)' -r
complete -c tsh -n "__fish_tsh_using_subcommand completion" -l user -d 'Teleport user [default: the current profile\'s, else $USER]' -r
complete -c tsh -n "__fish_tsh_using_subcommand completion" -l cluster -d 'Cluster to act on (a leaf of the root you signed in to)' -r
complete -c tsh -n "__fish_tsh_using_subcommand completion" -s i -l identity -d 'Identity file (from \'tctl auth sign\') instead of a profile' -r -F
complete -c tsh -n "__fish_tsh_using_subcommand completion" -l insecure -d 'Do not verify the proxy\'s web certificate (testing only)'
complete -c tsh -n "__fish_tsh_using_subcommand completion" -s d -l debug -d 'Verbose output'
complete -c tsh -n "__fish_tsh_using_subcommand completion" -s h -l help -d 'Print help'
complete -c tsh -n "__fish_tsh_using_subcommand mfa; and not __fish_seen_subcommand_from ls add rm help" -l proxy -d 'Proxy address, host[:port] (no port: 443, then 3080)' -r
complete -c tsh -n "__fish_tsh_using_subcommand mfa; and not __fish_seen_subcommand_from ls add rm help" -l user -d 'Teleport user [default: the current profile\'s, else $USER]' -r
complete -c tsh -n "__fish_tsh_using_subcommand mfa; and not __fish_seen_subcommand_from ls add rm help" -l cluster -d 'Cluster to act on (a leaf of the root you signed in to)' -r
complete -c tsh -n "__fish_tsh_using_subcommand mfa; and not __fish_seen_subcommand_from ls add rm help" -s i -l identity -d 'Identity file (from \'tctl auth sign\') instead of a profile' -r -F
complete -c tsh -n "__fish_tsh_using_subcommand mfa; and not __fish_seen_subcommand_from ls add rm help" -l insecure -d 'Do not verify the proxy\'s web certificate (testing only)'
complete -c tsh -n "__fish_tsh_using_subcommand mfa; and not __fish_seen_subcommand_from ls add rm help" -s d -l debug -d 'Verbose output'
complete -c tsh -n "__fish_tsh_using_subcommand mfa; and not __fish_seen_subcommand_from ls add rm help" -s h -l help -d 'Print help'
complete -c tsh -n "__fish_tsh_using_subcommand mfa; and not __fish_seen_subcommand_from ls add rm help" -f -a "ls" -d 'List your devices'
complete -c tsh -n "__fish_tsh_using_subcommand mfa; and not __fish_seen_subcommand_from ls add rm help" -f -a "add" -d 'Register a device (an authenticator app)'
complete -c tsh -n "__fish_tsh_using_subcommand mfa; and not __fish_seen_subcommand_from ls add rm help" -f -a "rm" -d 'Remove a device'
complete -c tsh -n "__fish_tsh_using_subcommand mfa; and not __fish_seen_subcommand_from ls add rm help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tsh -n "__fish_tsh_using_subcommand mfa; and __fish_seen_subcommand_from ls" -s f -l format -d 'Output format: text, json or yaml' -r
complete -c tsh -n "__fish_tsh_using_subcommand mfa; and __fish_seen_subcommand_from ls" -l proxy -d 'Proxy address, host[:port] (no port: 443, then 3080)' -r
complete -c tsh -n "__fish_tsh_using_subcommand mfa; and __fish_seen_subcommand_from ls" -l user -d 'Teleport user [default: the current profile\'s, else $USER]' -r
complete -c tsh -n "__fish_tsh_using_subcommand mfa; and __fish_seen_subcommand_from ls" -l cluster -d 'Cluster to act on (a leaf of the root you signed in to)' -r
complete -c tsh -n "__fish_tsh_using_subcommand mfa; and __fish_seen_subcommand_from ls" -s i -l identity -d 'Identity file (from \'tctl auth sign\') instead of a profile' -r -F
complete -c tsh -n "__fish_tsh_using_subcommand mfa; and __fish_seen_subcommand_from ls" -l insecure -d 'Do not verify the proxy\'s web certificate (testing only)'
complete -c tsh -n "__fish_tsh_using_subcommand mfa; and __fish_seen_subcommand_from ls" -s d -l debug -d 'Verbose output'
complete -c tsh -n "__fish_tsh_using_subcommand mfa; and __fish_seen_subcommand_from ls" -s h -l help -d 'Print help'
complete -c tsh -n "__fish_tsh_using_subcommand mfa; and __fish_seen_subcommand_from add" -l name -d 'A name for the device' -r
complete -c tsh -n "__fish_tsh_using_subcommand mfa; and __fish_seen_subcommand_from add" -l type -d 'Device type (only TOTP: security keys are not implemented)' -r
complete -c tsh -n "__fish_tsh_using_subcommand mfa; and __fish_seen_subcommand_from add" -l proxy -d 'Proxy address, host[:port] (no port: 443, then 3080)' -r
complete -c tsh -n "__fish_tsh_using_subcommand mfa; and __fish_seen_subcommand_from add" -l user -d 'Teleport user [default: the current profile\'s, else $USER]' -r
complete -c tsh -n "__fish_tsh_using_subcommand mfa; and __fish_seen_subcommand_from add" -l cluster -d 'Cluster to act on (a leaf of the root you signed in to)' -r
complete -c tsh -n "__fish_tsh_using_subcommand mfa; and __fish_seen_subcommand_from add" -s i -l identity -d 'Identity file (from \'tctl auth sign\') instead of a profile' -r -F
complete -c tsh -n "__fish_tsh_using_subcommand mfa; and __fish_seen_subcommand_from add" -l insecure -d 'Do not verify the proxy\'s web certificate (testing only)'
complete -c tsh -n "__fish_tsh_using_subcommand mfa; and __fish_seen_subcommand_from add" -s d -l debug -d 'Verbose output'
complete -c tsh -n "__fish_tsh_using_subcommand mfa; and __fish_seen_subcommand_from add" -s h -l help -d 'Print help'
complete -c tsh -n "__fish_tsh_using_subcommand mfa; and __fish_seen_subcommand_from rm" -l proxy -d 'Proxy address, host[:port] (no port: 443, then 3080)' -r
complete -c tsh -n "__fish_tsh_using_subcommand mfa; and __fish_seen_subcommand_from rm" -l user -d 'Teleport user [default: the current profile\'s, else $USER]' -r
complete -c tsh -n "__fish_tsh_using_subcommand mfa; and __fish_seen_subcommand_from rm" -l cluster -d 'Cluster to act on (a leaf of the root you signed in to)' -r
complete -c tsh -n "__fish_tsh_using_subcommand mfa; and __fish_seen_subcommand_from rm" -s i -l identity -d 'Identity file (from \'tctl auth sign\') instead of a profile' -r -F
complete -c tsh -n "__fish_tsh_using_subcommand mfa; and __fish_seen_subcommand_from rm" -l insecure -d 'Do not verify the proxy\'s web certificate (testing only)'
complete -c tsh -n "__fish_tsh_using_subcommand mfa; and __fish_seen_subcommand_from rm" -s d -l debug -d 'Verbose output'
complete -c tsh -n "__fish_tsh_using_subcommand mfa; and __fish_seen_subcommand_from rm" -s h -l help -d 'Print help'
complete -c tsh -n "__fish_tsh_using_subcommand mfa; and __fish_seen_subcommand_from help" -f -a "ls" -d 'List your devices'
complete -c tsh -n "__fish_tsh_using_subcommand mfa; and __fish_seen_subcommand_from help" -f -a "add" -d 'Register a device (an authenticator app)'
complete -c tsh -n "__fish_tsh_using_subcommand mfa; and __fish_seen_subcommand_from help" -f -a "rm" -d 'Remove a device'
complete -c tsh -n "__fish_tsh_using_subcommand mfa; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tsh -n "__fish_tsh_using_subcommand access; and not __fish_seen_subcommand_from explain help" -l proxy -d 'Proxy address, host[:port] (no port: 443, then 3080)' -r
complete -c tsh -n "__fish_tsh_using_subcommand access; and not __fish_seen_subcommand_from explain help" -l user -d 'Teleport user [default: the current profile\'s, else $USER]' -r
complete -c tsh -n "__fish_tsh_using_subcommand access; and not __fish_seen_subcommand_from explain help" -l cluster -d 'Cluster to act on (a leaf of the root you signed in to)' -r
complete -c tsh -n "__fish_tsh_using_subcommand access; and not __fish_seen_subcommand_from explain help" -s i -l identity -d 'Identity file (from \'tctl auth sign\') instead of a profile' -r -F
complete -c tsh -n "__fish_tsh_using_subcommand access; and not __fish_seen_subcommand_from explain help" -l insecure -d 'Do not verify the proxy\'s web certificate (testing only)'
complete -c tsh -n "__fish_tsh_using_subcommand access; and not __fish_seen_subcommand_from explain help" -s d -l debug -d 'Verbose output'
complete -c tsh -n "__fish_tsh_using_subcommand access; and not __fish_seen_subcommand_from explain help" -s h -l help -d 'Print help'
complete -c tsh -n "__fish_tsh_using_subcommand access; and not __fish_seen_subcommand_from explain help" -f -a "explain" -d 'Explain, check by check, whether login@node is allowed, as the node decides it'
complete -c tsh -n "__fish_tsh_using_subcommand access; and not __fish_seen_subcommand_from explain help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tsh -n "__fish_tsh_using_subcommand access; and __fish_seen_subcommand_from explain" -l kube -d 'A Kubernetes cluster instead of a login: may you reach it, as whom' -r
complete -c tsh -n "__fish_tsh_using_subcommand access; and __fish_seen_subcommand_from explain" -s f -l format -d 'Output format: text, json or yaml' -r
complete -c tsh -n "__fish_tsh_using_subcommand access; and __fish_seen_subcommand_from explain" -l proxy -d 'Proxy address, host[:port] (no port: 443, then 3080)' -r
complete -c tsh -n "__fish_tsh_using_subcommand access; and __fish_seen_subcommand_from explain" -l user -d 'Teleport user [default: the current profile\'s, else $USER]' -r
complete -c tsh -n "__fish_tsh_using_subcommand access; and __fish_seen_subcommand_from explain" -l cluster -d 'Cluster to act on (a leaf of the root you signed in to)' -r
complete -c tsh -n "__fish_tsh_using_subcommand access; and __fish_seen_subcommand_from explain" -s i -l identity -d 'Identity file (from \'tctl auth sign\') instead of a profile' -r -F
complete -c tsh -n "__fish_tsh_using_subcommand access; and __fish_seen_subcommand_from explain" -l insecure -d 'Do not verify the proxy\'s web certificate (testing only)'
complete -c tsh -n "__fish_tsh_using_subcommand access; and __fish_seen_subcommand_from explain" -s d -l debug -d 'Verbose output'
complete -c tsh -n "__fish_tsh_using_subcommand access; and __fish_seen_subcommand_from explain" -s h -l help -d 'Print help'
complete -c tsh -n "__fish_tsh_using_subcommand access; and __fish_seen_subcommand_from help" -f -a "explain" -d 'Explain, check by check, whether login@node is allowed, as the node decides it'
complete -c tsh -n "__fish_tsh_using_subcommand access; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tsh -n "__fish_tsh_using_subcommand recordings; and not __fish_seen_subcommand_from ls help" -l proxy -d 'Proxy address, host[:port] (no port: 443, then 3080)' -r
complete -c tsh -n "__fish_tsh_using_subcommand recordings; and not __fish_seen_subcommand_from ls help" -l user -d 'Teleport user [default: the current profile\'s, else $USER]' -r
complete -c tsh -n "__fish_tsh_using_subcommand recordings; and not __fish_seen_subcommand_from ls help" -l cluster -d 'Cluster to act on (a leaf of the root you signed in to)' -r
complete -c tsh -n "__fish_tsh_using_subcommand recordings; and not __fish_seen_subcommand_from ls help" -s i -l identity -d 'Identity file (from \'tctl auth sign\') instead of a profile' -r -F
complete -c tsh -n "__fish_tsh_using_subcommand recordings; and not __fish_seen_subcommand_from ls help" -l insecure -d 'Do not verify the proxy\'s web certificate (testing only)'
complete -c tsh -n "__fish_tsh_using_subcommand recordings; and not __fish_seen_subcommand_from ls help" -s d -l debug -d 'Verbose output'
complete -c tsh -n "__fish_tsh_using_subcommand recordings; and not __fish_seen_subcommand_from ls help" -s h -l help -d 'Print help'
complete -c tsh -n "__fish_tsh_using_subcommand recordings; and not __fish_seen_subcommand_from ls help" -f -a "ls" -d 'List the recorded sessions your roles may see (newest first)'
complete -c tsh -n "__fish_tsh_using_subcommand recordings; and not __fish_seen_subcommand_from ls help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tsh -n "__fish_tsh_using_subcommand recordings; and __fish_seen_subcommand_from ls" -s f -l format -d 'Output format: text, json or yaml' -r
complete -c tsh -n "__fish_tsh_using_subcommand recordings; and __fish_seen_subcommand_from ls" -l proxy -d 'Proxy address, host[:port] (no port: 443, then 3080)' -r
complete -c tsh -n "__fish_tsh_using_subcommand recordings; and __fish_seen_subcommand_from ls" -l user -d 'Teleport user [default: the current profile\'s, else $USER]' -r
complete -c tsh -n "__fish_tsh_using_subcommand recordings; and __fish_seen_subcommand_from ls" -l cluster -d 'Cluster to act on (a leaf of the root you signed in to)' -r
complete -c tsh -n "__fish_tsh_using_subcommand recordings; and __fish_seen_subcommand_from ls" -s i -l identity -d 'Identity file (from \'tctl auth sign\') instead of a profile' -r -F
complete -c tsh -n "__fish_tsh_using_subcommand recordings; and __fish_seen_subcommand_from ls" -l insecure -d 'Do not verify the proxy\'s web certificate (testing only)'
complete -c tsh -n "__fish_tsh_using_subcommand recordings; and __fish_seen_subcommand_from ls" -s d -l debug -d 'Verbose output'
complete -c tsh -n "__fish_tsh_using_subcommand recordings; and __fish_seen_subcommand_from ls" -s h -l help -d 'Print help'
complete -c tsh -n "__fish_tsh_using_subcommand recordings; and __fish_seen_subcommand_from help" -f -a "ls" -d 'List the recorded sessions your roles may see (newest first)'
complete -c tsh -n "__fish_tsh_using_subcommand recordings; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tsh -n "__fish_tsh_using_subcommand play" -l speed -d 'Play this many times faster (pty format)' -r
complete -c tsh -n "__fish_tsh_using_subcommand play" -l format -d 'pty: the output with its timing; text: the output at once; json: every frame with its time' -r
complete -c tsh -n "__fish_tsh_using_subcommand play" -l proxy -d 'Proxy address, host[:port] (no port: 443, then 3080)' -r
complete -c tsh -n "__fish_tsh_using_subcommand play" -l user -d 'Teleport user [default: the current profile\'s, else $USER]' -r
complete -c tsh -n "__fish_tsh_using_subcommand play" -l cluster -d 'Cluster to act on (a leaf of the root you signed in to)' -r
complete -c tsh -n "__fish_tsh_using_subcommand play" -s i -l identity -d 'Identity file (from \'tctl auth sign\') instead of a profile' -r -F
complete -c tsh -n "__fish_tsh_using_subcommand play" -l insecure -d 'Do not verify the proxy\'s web certificate (testing only)'
complete -c tsh -n "__fish_tsh_using_subcommand play" -s d -l debug -d 'Verbose output'
complete -c tsh -n "__fish_tsh_using_subcommand play" -s h -l help -d 'Print help'
complete -c tsh -n "__fish_tsh_using_subcommand sessions; and not __fish_seen_subcommand_from ls help" -l proxy -d 'Proxy address, host[:port] (no port: 443, then 3080)' -r
complete -c tsh -n "__fish_tsh_using_subcommand sessions; and not __fish_seen_subcommand_from ls help" -l user -d 'Teleport user [default: the current profile\'s, else $USER]' -r
complete -c tsh -n "__fish_tsh_using_subcommand sessions; and not __fish_seen_subcommand_from ls help" -l cluster -d 'Cluster to act on (a leaf of the root you signed in to)' -r
complete -c tsh -n "__fish_tsh_using_subcommand sessions; and not __fish_seen_subcommand_from ls help" -s i -l identity -d 'Identity file (from \'tctl auth sign\') instead of a profile' -r -F
complete -c tsh -n "__fish_tsh_using_subcommand sessions; and not __fish_seen_subcommand_from ls help" -l insecure -d 'Do not verify the proxy\'s web certificate (testing only)'
complete -c tsh -n "__fish_tsh_using_subcommand sessions; and not __fish_seen_subcommand_from ls help" -s d -l debug -d 'Verbose output'
complete -c tsh -n "__fish_tsh_using_subcommand sessions; and not __fish_seen_subcommand_from ls help" -s h -l help -d 'Print help'
complete -c tsh -n "__fish_tsh_using_subcommand sessions; and not __fish_seen_subcommand_from ls help" -f -a "ls" -d 'List the running sessions you may see (yours, and those your roles may join)'
complete -c tsh -n "__fish_tsh_using_subcommand sessions; and not __fish_seen_subcommand_from ls help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tsh -n "__fish_tsh_using_subcommand sessions; and __fish_seen_subcommand_from ls" -s f -l format -d 'Output format: text, json or yaml' -r
complete -c tsh -n "__fish_tsh_using_subcommand sessions; and __fish_seen_subcommand_from ls" -l kind -d 'Kinds of session to list (only ssh sessions exist here)' -r
complete -c tsh -n "__fish_tsh_using_subcommand sessions; and __fish_seen_subcommand_from ls" -l proxy -d 'Proxy address, host[:port] (no port: 443, then 3080)' -r
complete -c tsh -n "__fish_tsh_using_subcommand sessions; and __fish_seen_subcommand_from ls" -l user -d 'Teleport user [default: the current profile\'s, else $USER]' -r
complete -c tsh -n "__fish_tsh_using_subcommand sessions; and __fish_seen_subcommand_from ls" -l cluster -d 'Cluster to act on (a leaf of the root you signed in to)' -r
complete -c tsh -n "__fish_tsh_using_subcommand sessions; and __fish_seen_subcommand_from ls" -s i -l identity -d 'Identity file (from \'tctl auth sign\') instead of a profile' -r -F
complete -c tsh -n "__fish_tsh_using_subcommand sessions; and __fish_seen_subcommand_from ls" -l insecure -d 'Do not verify the proxy\'s web certificate (testing only)'
complete -c tsh -n "__fish_tsh_using_subcommand sessions; and __fish_seen_subcommand_from ls" -s d -l debug -d 'Verbose output'
complete -c tsh -n "__fish_tsh_using_subcommand sessions; and __fish_seen_subcommand_from ls" -s h -l help -d 'Print help'
complete -c tsh -n "__fish_tsh_using_subcommand sessions; and __fish_seen_subcommand_from help" -f -a "ls" -d 'List the running sessions you may see (yours, and those your roles may join)'
complete -c tsh -n "__fish_tsh_using_subcommand sessions; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tsh -n "__fish_tsh_using_subcommand join" -l mode -d 'observer (watch) or peer (type too)' -r
complete -c tsh -n "__fish_tsh_using_subcommand join" -l proxy -d 'Proxy address, host[:port] (no port: 443, then 3080)' -r
complete -c tsh -n "__fish_tsh_using_subcommand join" -l user -d 'Teleport user [default: the current profile\'s, else $USER]' -r
complete -c tsh -n "__fish_tsh_using_subcommand join" -l cluster -d 'Cluster to act on (a leaf of the root you signed in to)' -r
complete -c tsh -n "__fish_tsh_using_subcommand join" -s i -l identity -d 'Identity file (from \'tctl auth sign\') instead of a profile' -r -F
complete -c tsh -n "__fish_tsh_using_subcommand join" -l insecure -d 'Do not verify the proxy\'s web certificate (testing only)'
complete -c tsh -n "__fish_tsh_using_subcommand join" -s d -l debug -d 'Verbose output'
complete -c tsh -n "__fish_tsh_using_subcommand join" -s h -l help -d 'Print help'
complete -c tsh -n "__fish_tsh_using_subcommand kube; and not __fish_seen_subcommand_from ls login credentials help" -l proxy -d 'Proxy address, host[:port] (no port: 443, then 3080)' -r
complete -c tsh -n "__fish_tsh_using_subcommand kube; and not __fish_seen_subcommand_from ls login credentials help" -l user -d 'Teleport user [default: the current profile\'s, else $USER]' -r
complete -c tsh -n "__fish_tsh_using_subcommand kube; and not __fish_seen_subcommand_from ls login credentials help" -l cluster -d 'Cluster to act on (a leaf of the root you signed in to)' -r
complete -c tsh -n "__fish_tsh_using_subcommand kube; and not __fish_seen_subcommand_from ls login credentials help" -s i -l identity -d 'Identity file (from \'tctl auth sign\') instead of a profile' -r -F
complete -c tsh -n "__fish_tsh_using_subcommand kube; and not __fish_seen_subcommand_from ls login credentials help" -l insecure -d 'Do not verify the proxy\'s web certificate (testing only)'
complete -c tsh -n "__fish_tsh_using_subcommand kube; and not __fish_seen_subcommand_from ls login credentials help" -s d -l debug -d 'Verbose output'
complete -c tsh -n "__fish_tsh_using_subcommand kube; and not __fish_seen_subcommand_from ls login credentials help" -s h -l help -d 'Print help'
complete -c tsh -n "__fish_tsh_using_subcommand kube; and not __fish_seen_subcommand_from ls login credentials help" -f -a "ls" -d 'List the Kubernetes clusters you can reach'
complete -c tsh -n "__fish_tsh_using_subcommand kube; and not __fish_seen_subcommand_from ls login credentials help" -f -a "login" -d 'Write a kubeconfig entry for a Kubernetes cluster, then use kubectl'
complete -c tsh -n "__fish_tsh_using_subcommand kube; and not __fish_seen_subcommand_from ls login credentials help" -f -a "credentials" -d 'Print credentials for kubectl (called by the kubeconfig tsh kube login writes)'
complete -c tsh -n "__fish_tsh_using_subcommand kube; and not __fish_seen_subcommand_from ls login credentials help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tsh -n "__fish_tsh_using_subcommand kube; and __fish_seen_subcommand_from ls" -s f -l format -d 'Output format: text, json or yaml' -r
complete -c tsh -n "__fish_tsh_using_subcommand kube; and __fish_seen_subcommand_from ls" -l proxy -d 'Proxy address, host[:port] (no port: 443, then 3080)' -r
complete -c tsh -n "__fish_tsh_using_subcommand kube; and __fish_seen_subcommand_from ls" -l user -d 'Teleport user [default: the current profile\'s, else $USER]' -r
complete -c tsh -n "__fish_tsh_using_subcommand kube; and __fish_seen_subcommand_from ls" -l cluster -d 'Cluster to act on (a leaf of the root you signed in to)' -r
complete -c tsh -n "__fish_tsh_using_subcommand kube; and __fish_seen_subcommand_from ls" -s i -l identity -d 'Identity file (from \'tctl auth sign\') instead of a profile' -r -F
complete -c tsh -n "__fish_tsh_using_subcommand kube; and __fish_seen_subcommand_from ls" -s R -l all -d 'The Kubernetes clusters of the root and of every leaf you may see'
complete -c tsh -n "__fish_tsh_using_subcommand kube; and __fish_seen_subcommand_from ls" -s q -l quiet -d 'No headers'
complete -c tsh -n "__fish_tsh_using_subcommand kube; and __fish_seen_subcommand_from ls" -s v -l verbose -d 'Full labels'
complete -c tsh -n "__fish_tsh_using_subcommand kube; and __fish_seen_subcommand_from ls" -l insecure -d 'Do not verify the proxy\'s web certificate (testing only)'
complete -c tsh -n "__fish_tsh_using_subcommand kube; and __fish_seen_subcommand_from ls" -s d -l debug -d 'Verbose output'
complete -c tsh -n "__fish_tsh_using_subcommand kube; and __fish_seen_subcommand_from ls" -s h -l help -d 'Print help'
complete -c tsh -n "__fish_tsh_using_subcommand kube; and __fish_seen_subcommand_from login" -l set-context-name -d 'The context name, instead of <cluster>-<kube cluster> ({{.ClusterName}} and {{.KubeName}} are replaced)' -r
complete -c tsh -n "__fish_tsh_using_subcommand kube; and __fish_seen_subcommand_from login" -l as -d 'Kubernetes user to impersonate (one of your roles\' kubernetes_users)' -r
complete -c tsh -n "__fish_tsh_using_subcommand kube; and __fish_seen_subcommand_from login" -l as-groups -d 'Kubernetes groups to impersonate (among your roles\' kubernetes_groups)' -r
complete -c tsh -n "__fish_tsh_using_subcommand kube; and __fish_seen_subcommand_from login" -l proxy -d 'Proxy address, host[:port] (no port: 443, then 3080)' -r
complete -c tsh -n "__fish_tsh_using_subcommand kube; and __fish_seen_subcommand_from login" -l user -d 'Teleport user [default: the current profile\'s, else $USER]' -r
complete -c tsh -n "__fish_tsh_using_subcommand kube; and __fish_seen_subcommand_from login" -l cluster -d 'Cluster to act on (a leaf of the root you signed in to)' -r
complete -c tsh -n "__fish_tsh_using_subcommand kube; and __fish_seen_subcommand_from login" -s i -l identity -d 'Identity file (from \'tctl auth sign\') instead of a profile' -r -F
complete -c tsh -n "__fish_tsh_using_subcommand kube; and __fish_seen_subcommand_from login" -l all -d 'Every Kubernetes cluster of the selected cluster (the current context stays)'
complete -c tsh -n "__fish_tsh_using_subcommand kube; and __fish_seen_subcommand_from login" -l insecure -d 'Do not verify the proxy\'s web certificate (testing only)'
complete -c tsh -n "__fish_tsh_using_subcommand kube; and __fish_seen_subcommand_from login" -s d -l debug -d 'Verbose output'
complete -c tsh -n "__fish_tsh_using_subcommand kube; and __fish_seen_subcommand_from login" -s h -l help -d 'Print help'
complete -c tsh -n "__fish_tsh_using_subcommand kube; and __fish_seen_subcommand_from credentials" -l kube-cluster -d 'The Kubernetes cluster' -r
complete -c tsh -n "__fish_tsh_using_subcommand kube; and __fish_seen_subcommand_from credentials" -l teleport-cluster -d 'The Teleport cluster that has it' -r
complete -c tsh -n "__fish_tsh_using_subcommand kube; and __fish_seen_subcommand_from credentials" -l proxy -d 'Proxy address, host[:port] (no port: 443, then 3080)' -r
complete -c tsh -n "__fish_tsh_using_subcommand kube; and __fish_seen_subcommand_from credentials" -l user -d 'Teleport user [default: the current profile\'s, else $USER]' -r
complete -c tsh -n "__fish_tsh_using_subcommand kube; and __fish_seen_subcommand_from credentials" -l cluster -d 'Cluster to act on (a leaf of the root you signed in to)' -r
complete -c tsh -n "__fish_tsh_using_subcommand kube; and __fish_seen_subcommand_from credentials" -s i -l identity -d 'Identity file (from \'tctl auth sign\') instead of a profile' -r -F
complete -c tsh -n "__fish_tsh_using_subcommand kube; and __fish_seen_subcommand_from credentials" -l insecure -d 'Do not verify the proxy\'s web certificate (testing only)'
complete -c tsh -n "__fish_tsh_using_subcommand kube; and __fish_seen_subcommand_from credentials" -s d -l debug -d 'Verbose output'
complete -c tsh -n "__fish_tsh_using_subcommand kube; and __fish_seen_subcommand_from credentials" -s h -l help -d 'Print help'
complete -c tsh -n "__fish_tsh_using_subcommand kube; and __fish_seen_subcommand_from help" -f -a "ls" -d 'List the Kubernetes clusters you can reach'
complete -c tsh -n "__fish_tsh_using_subcommand kube; and __fish_seen_subcommand_from help" -f -a "login" -d 'Write a kubeconfig entry for a Kubernetes cluster, then use kubectl'
complete -c tsh -n "__fish_tsh_using_subcommand kube; and __fish_seen_subcommand_from help" -f -a "credentials" -d 'Print credentials for kubectl (called by the kubeconfig tsh kube login writes)'
complete -c tsh -n "__fish_tsh_using_subcommand kube; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tsh -n "__fish_tsh_using_subcommand apps; and not __fish_seen_subcommand_from ls login config logout help" -l proxy -d 'Proxy address, host[:port] (no port: 443, then 3080)' -r
complete -c tsh -n "__fish_tsh_using_subcommand apps; and not __fish_seen_subcommand_from ls login config logout help" -l user -d 'Teleport user [default: the current profile\'s, else $USER]' -r
complete -c tsh -n "__fish_tsh_using_subcommand apps; and not __fish_seen_subcommand_from ls login config logout help" -l cluster -d 'Cluster to act on (a leaf of the root you signed in to)' -r
complete -c tsh -n "__fish_tsh_using_subcommand apps; and not __fish_seen_subcommand_from ls login config logout help" -s i -l identity -d 'Identity file (from \'tctl auth sign\') instead of a profile' -r -F
complete -c tsh -n "__fish_tsh_using_subcommand apps; and not __fish_seen_subcommand_from ls login config logout help" -l insecure -d 'Do not verify the proxy\'s web certificate (testing only)'
complete -c tsh -n "__fish_tsh_using_subcommand apps; and not __fish_seen_subcommand_from ls login config logout help" -s d -l debug -d 'Verbose output'
complete -c tsh -n "__fish_tsh_using_subcommand apps; and not __fish_seen_subcommand_from ls login config logout help" -s h -l help -d 'Print help'
complete -c tsh -n "__fish_tsh_using_subcommand apps; and not __fish_seen_subcommand_from ls login config logout help" -f -a "ls" -d 'List the applications you can reach'
complete -c tsh -n "__fish_tsh_using_subcommand apps; and not __fish_seen_subcommand_from ls login config logout help" -f -a "login" -d 'Get a certificate for an application (the cluster that serves it decides)'
complete -c tsh -n "__fish_tsh_using_subcommand apps; and not __fish_seen_subcommand_from ls login config logout help" -f -a "config" -d 'Show how to reach an application you logged in to'
complete -c tsh -n "__fish_tsh_using_subcommand apps; and not __fish_seen_subcommand_from ls login config logout help" -f -a "logout" -d 'End application sessions (all of them without a name)'
complete -c tsh -n "__fish_tsh_using_subcommand apps; and not __fish_seen_subcommand_from ls login config logout help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tsh -n "__fish_tsh_using_subcommand apps; and __fish_seen_subcommand_from ls" -s f -l format -d 'Output format: text, json or yaml' -r
complete -c tsh -n "__fish_tsh_using_subcommand apps; and __fish_seen_subcommand_from ls" -l proxy -d 'Proxy address, host[:port] (no port: 443, then 3080)' -r
complete -c tsh -n "__fish_tsh_using_subcommand apps; and __fish_seen_subcommand_from ls" -l user -d 'Teleport user [default: the current profile\'s, else $USER]' -r
complete -c tsh -n "__fish_tsh_using_subcommand apps; and __fish_seen_subcommand_from ls" -l cluster -d 'Cluster to act on (a leaf of the root you signed in to)' -r
complete -c tsh -n "__fish_tsh_using_subcommand apps; and __fish_seen_subcommand_from ls" -s i -l identity -d 'Identity file (from \'tctl auth sign\') instead of a profile' -r -F
complete -c tsh -n "__fish_tsh_using_subcommand apps; and __fish_seen_subcommand_from ls" -s R -l all -d 'The applications of the root and of every leaf you may see'
complete -c tsh -n "__fish_tsh_using_subcommand apps; and __fish_seen_subcommand_from ls" -s v -l verbose -d 'Also show each app\'s URI'
complete -c tsh -n "__fish_tsh_using_subcommand apps; and __fish_seen_subcommand_from ls" -l insecure -d 'Do not verify the proxy\'s web certificate (testing only)'
complete -c tsh -n "__fish_tsh_using_subcommand apps; and __fish_seen_subcommand_from ls" -s d -l debug -d 'Verbose output'
complete -c tsh -n "__fish_tsh_using_subcommand apps; and __fish_seen_subcommand_from ls" -s h -l help -d 'Print help'
complete -c tsh -n "__fish_tsh_using_subcommand apps; and __fish_seen_subcommand_from login" -l proxy -d 'Proxy address, host[:port] (no port: 443, then 3080)' -r
complete -c tsh -n "__fish_tsh_using_subcommand apps; and __fish_seen_subcommand_from login" -l user -d 'Teleport user [default: the current profile\'s, else $USER]' -r
complete -c tsh -n "__fish_tsh_using_subcommand apps; and __fish_seen_subcommand_from login" -l cluster -d 'Cluster to act on (a leaf of the root you signed in to)' -r
complete -c tsh -n "__fish_tsh_using_subcommand apps; and __fish_seen_subcommand_from login" -s i -l identity -d 'Identity file (from \'tctl auth sign\') instead of a profile' -r -F
complete -c tsh -n "__fish_tsh_using_subcommand apps; and __fish_seen_subcommand_from login" -l insecure -d 'Do not verify the proxy\'s web certificate (testing only)'
complete -c tsh -n "__fish_tsh_using_subcommand apps; and __fish_seen_subcommand_from login" -s d -l debug -d 'Verbose output'
complete -c tsh -n "__fish_tsh_using_subcommand apps; and __fish_seen_subcommand_from login" -s h -l help -d 'Print help'
complete -c tsh -n "__fish_tsh_using_subcommand apps; and __fish_seen_subcommand_from config" -l format -d 'What to print: uri, ca, cert, key, curl, json or yaml (default: a summary)' -r
complete -c tsh -n "__fish_tsh_using_subcommand apps; and __fish_seen_subcommand_from config" -l proxy -d 'Proxy address, host[:port] (no port: 443, then 3080)' -r
complete -c tsh -n "__fish_tsh_using_subcommand apps; and __fish_seen_subcommand_from config" -l user -d 'Teleport user [default: the current profile\'s, else $USER]' -r
complete -c tsh -n "__fish_tsh_using_subcommand apps; and __fish_seen_subcommand_from config" -l cluster -d 'Cluster to act on (a leaf of the root you signed in to)' -r
complete -c tsh -n "__fish_tsh_using_subcommand apps; and __fish_seen_subcommand_from config" -s i -l identity -d 'Identity file (from \'tctl auth sign\') instead of a profile' -r -F
complete -c tsh -n "__fish_tsh_using_subcommand apps; and __fish_seen_subcommand_from config" -l insecure -d 'Do not verify the proxy\'s web certificate (testing only)'
complete -c tsh -n "__fish_tsh_using_subcommand apps; and __fish_seen_subcommand_from config" -s d -l debug -d 'Verbose output'
complete -c tsh -n "__fish_tsh_using_subcommand apps; and __fish_seen_subcommand_from config" -s h -l help -d 'Print help'
complete -c tsh -n "__fish_tsh_using_subcommand apps; and __fish_seen_subcommand_from logout" -l proxy -d 'Proxy address, host[:port] (no port: 443, then 3080)' -r
complete -c tsh -n "__fish_tsh_using_subcommand apps; and __fish_seen_subcommand_from logout" -l user -d 'Teleport user [default: the current profile\'s, else $USER]' -r
complete -c tsh -n "__fish_tsh_using_subcommand apps; and __fish_seen_subcommand_from logout" -l cluster -d 'Cluster to act on (a leaf of the root you signed in to)' -r
complete -c tsh -n "__fish_tsh_using_subcommand apps; and __fish_seen_subcommand_from logout" -s i -l identity -d 'Identity file (from \'tctl auth sign\') instead of a profile' -r -F
complete -c tsh -n "__fish_tsh_using_subcommand apps; and __fish_seen_subcommand_from logout" -l insecure -d 'Do not verify the proxy\'s web certificate (testing only)'
complete -c tsh -n "__fish_tsh_using_subcommand apps; and __fish_seen_subcommand_from logout" -s d -l debug -d 'Verbose output'
complete -c tsh -n "__fish_tsh_using_subcommand apps; and __fish_seen_subcommand_from logout" -s h -l help -d 'Print help'
complete -c tsh -n "__fish_tsh_using_subcommand apps; and __fish_seen_subcommand_from help" -f -a "ls" -d 'List the applications you can reach'
complete -c tsh -n "__fish_tsh_using_subcommand apps; and __fish_seen_subcommand_from help" -f -a "login" -d 'Get a certificate for an application (the cluster that serves it decides)'
complete -c tsh -n "__fish_tsh_using_subcommand apps; and __fish_seen_subcommand_from help" -f -a "config" -d 'Show how to reach an application you logged in to'
complete -c tsh -n "__fish_tsh_using_subcommand apps; and __fish_seen_subcommand_from help" -f -a "logout" -d 'End application sessions (all of them without a name)'
complete -c tsh -n "__fish_tsh_using_subcommand apps; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tsh -n "__fish_tsh_using_subcommand db; and not __fish_seen_subcommand_from ls login connect config env logout help" -l proxy -d 'Proxy address, host[:port] (no port: 443, then 3080)' -r
complete -c tsh -n "__fish_tsh_using_subcommand db; and not __fish_seen_subcommand_from ls login connect config env logout help" -l user -d 'Teleport user [default: the current profile\'s, else $USER]' -r
complete -c tsh -n "__fish_tsh_using_subcommand db; and not __fish_seen_subcommand_from ls login connect config env logout help" -l cluster -d 'Cluster to act on (a leaf of the root you signed in to)' -r
complete -c tsh -n "__fish_tsh_using_subcommand db; and not __fish_seen_subcommand_from ls login connect config env logout help" -s i -l identity -d 'Identity file (from \'tctl auth sign\') instead of a profile' -r -F
complete -c tsh -n "__fish_tsh_using_subcommand db; and not __fish_seen_subcommand_from ls login connect config env logout help" -l insecure -d 'Do not verify the proxy\'s web certificate (testing only)'
complete -c tsh -n "__fish_tsh_using_subcommand db; and not __fish_seen_subcommand_from ls login connect config env logout help" -s d -l debug -d 'Verbose output'
complete -c tsh -n "__fish_tsh_using_subcommand db; and not __fish_seen_subcommand_from ls login connect config env logout help" -s h -l help -d 'Print help'
complete -c tsh -n "__fish_tsh_using_subcommand db; and not __fish_seen_subcommand_from ls login connect config env logout help" -f -a "ls" -d 'List the databases you can reach'
complete -c tsh -n "__fish_tsh_using_subcommand db; and not __fish_seen_subcommand_from ls login connect config env logout help" -f -a "login" -d 'Get a certificate for a database (the cluster that serves it decides who you may be there)'
complete -c tsh -n "__fish_tsh_using_subcommand db; and not __fish_seen_subcommand_from ls login connect config env logout help" -f -a "connect" -d 'Connect to a database with its own client (psql), logging in first when needed'
complete -c tsh -n "__fish_tsh_using_subcommand db; and not __fish_seen_subcommand_from ls login connect config env logout help" -f -a "config" -d 'Show how to connect to a database you logged in to'
complete -c tsh -n "__fish_tsh_using_subcommand db; and not __fish_seen_subcommand_from ls login connect config env logout help" -f -a "env" -d 'Print the environment variables PostgreSQL clients read for a database you logged in to'
complete -c tsh -n "__fish_tsh_using_subcommand db; and not __fish_seen_subcommand_from ls login connect config env logout help" -f -a "logout" -d 'Remove database certificates (all of them without a name)'
complete -c tsh -n "__fish_tsh_using_subcommand db; and not __fish_seen_subcommand_from ls login connect config env logout help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tsh -n "__fish_tsh_using_subcommand db; and __fish_seen_subcommand_from ls" -s f -l format -d 'Output format: text, json or yaml' -r
complete -c tsh -n "__fish_tsh_using_subcommand db; and __fish_seen_subcommand_from ls" -l proxy -d 'Proxy address, host[:port] (no port: 443, then 3080)' -r
complete -c tsh -n "__fish_tsh_using_subcommand db; and __fish_seen_subcommand_from ls" -l user -d 'Teleport user [default: the current profile\'s, else $USER]' -r
complete -c tsh -n "__fish_tsh_using_subcommand db; and __fish_seen_subcommand_from ls" -l cluster -d 'Cluster to act on (a leaf of the root you signed in to)' -r
complete -c tsh -n "__fish_tsh_using_subcommand db; and __fish_seen_subcommand_from ls" -s i -l identity -d 'Identity file (from \'tctl auth sign\') instead of a profile' -r -F
complete -c tsh -n "__fish_tsh_using_subcommand db; and __fish_seen_subcommand_from ls" -s R -l all -d 'The databases of the root and of every leaf you may see'
complete -c tsh -n "__fish_tsh_using_subcommand db; and __fish_seen_subcommand_from ls" -s v -l verbose -d 'Also show each database\'s protocol and URI'
complete -c tsh -n "__fish_tsh_using_subcommand db; and __fish_seen_subcommand_from ls" -l insecure -d 'Do not verify the proxy\'s web certificate (testing only)'
complete -c tsh -n "__fish_tsh_using_subcommand db; and __fish_seen_subcommand_from ls" -s d -l debug -d 'Verbose output'
complete -c tsh -n "__fish_tsh_using_subcommand db; and __fish_seen_subcommand_from ls" -s h -l help -d 'Print help'
complete -c tsh -n "__fish_tsh_using_subcommand db; and __fish_seen_subcommand_from login" -l db-user -d 'The database user to connect as by default' -r
complete -c tsh -n "__fish_tsh_using_subcommand db; and __fish_seen_subcommand_from login" -l db-name -d 'The database name to connect to by default' -r
complete -c tsh -n "__fish_tsh_using_subcommand db; and __fish_seen_subcommand_from login" -l proxy -d 'Proxy address, host[:port] (no port: 443, then 3080)' -r
complete -c tsh -n "__fish_tsh_using_subcommand db; and __fish_seen_subcommand_from login" -l user -d 'Teleport user [default: the current profile\'s, else $USER]' -r
complete -c tsh -n "__fish_tsh_using_subcommand db; and __fish_seen_subcommand_from login" -l cluster -d 'Cluster to act on (a leaf of the root you signed in to)' -r
complete -c tsh -n "__fish_tsh_using_subcommand db; and __fish_seen_subcommand_from login" -s i -l identity -d 'Identity file (from \'tctl auth sign\') instead of a profile' -r -F
complete -c tsh -n "__fish_tsh_using_subcommand db; and __fish_seen_subcommand_from login" -l insecure -d 'Do not verify the proxy\'s web certificate (testing only)'
complete -c tsh -n "__fish_tsh_using_subcommand db; and __fish_seen_subcommand_from login" -s d -l debug -d 'Verbose output'
complete -c tsh -n "__fish_tsh_using_subcommand db; and __fish_seen_subcommand_from login" -s h -l help -d 'Print help'
complete -c tsh -n "__fish_tsh_using_subcommand db; and __fish_seen_subcommand_from connect" -l db-user -d 'The database user (default: the login\'s)' -r
complete -c tsh -n "__fish_tsh_using_subcommand db; and __fish_seen_subcommand_from connect" -l db-name -d 'The database name (default: the login\'s)' -r
complete -c tsh -n "__fish_tsh_using_subcommand db; and __fish_seen_subcommand_from connect" -l proxy -d 'Proxy address, host[:port] (no port: 443, then 3080)' -r
complete -c tsh -n "__fish_tsh_using_subcommand db; and __fish_seen_subcommand_from connect" -l user -d 'Teleport user [default: the current profile\'s, else $USER]' -r
complete -c tsh -n "__fish_tsh_using_subcommand db; and __fish_seen_subcommand_from connect" -l cluster -d 'Cluster to act on (a leaf of the root you signed in to)' -r
complete -c tsh -n "__fish_tsh_using_subcommand db; and __fish_seen_subcommand_from connect" -s i -l identity -d 'Identity file (from \'tctl auth sign\') instead of a profile' -r -F
complete -c tsh -n "__fish_tsh_using_subcommand db; and __fish_seen_subcommand_from connect" -l insecure -d 'Do not verify the proxy\'s web certificate (testing only)'
complete -c tsh -n "__fish_tsh_using_subcommand db; and __fish_seen_subcommand_from connect" -s d -l debug -d 'Verbose output'
complete -c tsh -n "__fish_tsh_using_subcommand db; and __fish_seen_subcommand_from connect" -s h -l help -d 'Print help'
complete -c tsh -n "__fish_tsh_using_subcommand db; and __fish_seen_subcommand_from config" -s f -l format -d 'Output format: text, cmd (the psql command), uri or json' -r
complete -c tsh -n "__fish_tsh_using_subcommand db; and __fish_seen_subcommand_from config" -l proxy -d 'Proxy address, host[:port] (no port: 443, then 3080)' -r
complete -c tsh -n "__fish_tsh_using_subcommand db; and __fish_seen_subcommand_from config" -l user -d 'Teleport user [default: the current profile\'s, else $USER]' -r
complete -c tsh -n "__fish_tsh_using_subcommand db; and __fish_seen_subcommand_from config" -l cluster -d 'Cluster to act on (a leaf of the root you signed in to)' -r
complete -c tsh -n "__fish_tsh_using_subcommand db; and __fish_seen_subcommand_from config" -s i -l identity -d 'Identity file (from \'tctl auth sign\') instead of a profile' -r -F
complete -c tsh -n "__fish_tsh_using_subcommand db; and __fish_seen_subcommand_from config" -l insecure -d 'Do not verify the proxy\'s web certificate (testing only)'
complete -c tsh -n "__fish_tsh_using_subcommand db; and __fish_seen_subcommand_from config" -s d -l debug -d 'Verbose output'
complete -c tsh -n "__fish_tsh_using_subcommand db; and __fish_seen_subcommand_from config" -s h -l help -d 'Print help'
complete -c tsh -n "__fish_tsh_using_subcommand db; and __fish_seen_subcommand_from env" -l proxy -d 'Proxy address, host[:port] (no port: 443, then 3080)' -r
complete -c tsh -n "__fish_tsh_using_subcommand db; and __fish_seen_subcommand_from env" -l user -d 'Teleport user [default: the current profile\'s, else $USER]' -r
complete -c tsh -n "__fish_tsh_using_subcommand db; and __fish_seen_subcommand_from env" -l cluster -d 'Cluster to act on (a leaf of the root you signed in to)' -r
complete -c tsh -n "__fish_tsh_using_subcommand db; and __fish_seen_subcommand_from env" -s i -l identity -d 'Identity file (from \'tctl auth sign\') instead of a profile' -r -F
complete -c tsh -n "__fish_tsh_using_subcommand db; and __fish_seen_subcommand_from env" -l insecure -d 'Do not verify the proxy\'s web certificate (testing only)'
complete -c tsh -n "__fish_tsh_using_subcommand db; and __fish_seen_subcommand_from env" -s d -l debug -d 'Verbose output'
complete -c tsh -n "__fish_tsh_using_subcommand db; and __fish_seen_subcommand_from env" -s h -l help -d 'Print help'
complete -c tsh -n "__fish_tsh_using_subcommand db; and __fish_seen_subcommand_from logout" -l proxy -d 'Proxy address, host[:port] (no port: 443, then 3080)' -r
complete -c tsh -n "__fish_tsh_using_subcommand db; and __fish_seen_subcommand_from logout" -l user -d 'Teleport user [default: the current profile\'s, else $USER]' -r
complete -c tsh -n "__fish_tsh_using_subcommand db; and __fish_seen_subcommand_from logout" -l cluster -d 'Cluster to act on (a leaf of the root you signed in to)' -r
complete -c tsh -n "__fish_tsh_using_subcommand db; and __fish_seen_subcommand_from logout" -s i -l identity -d 'Identity file (from \'tctl auth sign\') instead of a profile' -r -F
complete -c tsh -n "__fish_tsh_using_subcommand db; and __fish_seen_subcommand_from logout" -l insecure -d 'Do not verify the proxy\'s web certificate (testing only)'
complete -c tsh -n "__fish_tsh_using_subcommand db; and __fish_seen_subcommand_from logout" -s d -l debug -d 'Verbose output'
complete -c tsh -n "__fish_tsh_using_subcommand db; and __fish_seen_subcommand_from logout" -s h -l help -d 'Print help'
complete -c tsh -n "__fish_tsh_using_subcommand db; and __fish_seen_subcommand_from help" -f -a "ls" -d 'List the databases you can reach'
complete -c tsh -n "__fish_tsh_using_subcommand db; and __fish_seen_subcommand_from help" -f -a "login" -d 'Get a certificate for a database (the cluster that serves it decides who you may be there)'
complete -c tsh -n "__fish_tsh_using_subcommand db; and __fish_seen_subcommand_from help" -f -a "connect" -d 'Connect to a database with its own client (psql), logging in first when needed'
complete -c tsh -n "__fish_tsh_using_subcommand db; and __fish_seen_subcommand_from help" -f -a "config" -d 'Show how to connect to a database you logged in to'
complete -c tsh -n "__fish_tsh_using_subcommand db; and __fish_seen_subcommand_from help" -f -a "env" -d 'Print the environment variables PostgreSQL clients read for a database you logged in to'
complete -c tsh -n "__fish_tsh_using_subcommand db; and __fish_seen_subcommand_from help" -f -a "logout" -d 'Remove database certificates (all of them without a name)'
complete -c tsh -n "__fish_tsh_using_subcommand db; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tsh -n "__fish_tsh_using_subcommand request; and not __fish_seen_subcommand_from create ls list show review drop help" -l proxy -d 'Proxy address, host[:port] (no port: 443, then 3080)' -r
complete -c tsh -n "__fish_tsh_using_subcommand request; and not __fish_seen_subcommand_from create ls list show review drop help" -l user -d 'Teleport user [default: the current profile\'s, else $USER]' -r
complete -c tsh -n "__fish_tsh_using_subcommand request; and not __fish_seen_subcommand_from create ls list show review drop help" -l cluster -d 'Cluster to act on (a leaf of the root you signed in to)' -r
complete -c tsh -n "__fish_tsh_using_subcommand request; and not __fish_seen_subcommand_from create ls list show review drop help" -s i -l identity -d 'Identity file (from \'tctl auth sign\') instead of a profile' -r -F
complete -c tsh -n "__fish_tsh_using_subcommand request; and not __fish_seen_subcommand_from create ls list show review drop help" -l insecure -d 'Do not verify the proxy\'s web certificate (testing only)'
complete -c tsh -n "__fish_tsh_using_subcommand request; and not __fish_seen_subcommand_from create ls list show review drop help" -s d -l debug -d 'Verbose output'
complete -c tsh -n "__fish_tsh_using_subcommand request; and not __fish_seen_subcommand_from create ls list show review drop help" -s h -l help -d 'Print help'
complete -c tsh -n "__fish_tsh_using_subcommand request; and not __fish_seen_subcommand_from create ls list show review drop help" -f -a "create" -d 'Ask for roles for a while; waits for the decision unless --nowait'
complete -c tsh -n "__fish_tsh_using_subcommand request; and not __fish_seen_subcommand_from create ls list show review drop help" -f -a "ls" -d 'List the requests you made or may review'
complete -c tsh -n "__fish_tsh_using_subcommand request; and not __fish_seen_subcommand_from create ls list show review drop help" -f -a "list" -d 'List the requests you made or may review'
complete -c tsh -n "__fish_tsh_using_subcommand request; and not __fish_seen_subcommand_from create ls list show review drop help" -f -a "show" -d 'Show one request with its reviews'
complete -c tsh -n "__fish_tsh_using_subcommand request; and not __fish_seen_subcommand_from create ls list show review drop help" -f -a "review" -d 'Approve or deny someone\'s request'
complete -c tsh -n "__fish_tsh_using_subcommand request; and not __fish_seen_subcommand_from create ls list show review drop help" -f -a "drop" -d 'Stop using approved requests (all of them without an id): new certificates without their roles'
complete -c tsh -n "__fish_tsh_using_subcommand request; and not __fish_seen_subcommand_from create ls list show review drop help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tsh -n "__fish_tsh_using_subcommand request; and __fish_seen_subcommand_from create" -l roles -d 'Roles to request, comma-separated' -r
complete -c tsh -n "__fish_tsh_using_subcommand request; and __fish_seen_subcommand_from create" -l reason -d 'Why (your roles may require one)' -r
complete -c tsh -n "__fish_tsh_using_subcommand request; and __fish_seen_subcommand_from create" -l reviewers -d 'Suggested reviewers, comma-separated' -r
complete -c tsh -n "__fish_tsh_using_subcommand request; and __fish_seen_subcommand_from create" -l max-duration -d 'How long the access should last (e.g. 1h; default and limit: your roles\')' -r
complete -c tsh -n "__fish_tsh_using_subcommand request; and __fish_seen_subcommand_from create" -s f -l format -d 'Output format: text, json or yaml' -r
complete -c tsh -n "__fish_tsh_using_subcommand request; and __fish_seen_subcommand_from create" -l proxy -d 'Proxy address, host[:port] (no port: 443, then 3080)' -r
complete -c tsh -n "__fish_tsh_using_subcommand request; and __fish_seen_subcommand_from create" -l user -d 'Teleport user [default: the current profile\'s, else $USER]' -r
complete -c tsh -n "__fish_tsh_using_subcommand request; and __fish_seen_subcommand_from create" -l cluster -d 'Cluster to act on (a leaf of the root you signed in to)' -r
complete -c tsh -n "__fish_tsh_using_subcommand request; and __fish_seen_subcommand_from create" -s i -l identity -d 'Identity file (from \'tctl auth sign\') instead of a profile' -r -F
complete -c tsh -n "__fish_tsh_using_subcommand request; and __fish_seen_subcommand_from create" -l nowait -d 'Do not wait for the decision'
complete -c tsh -n "__fish_tsh_using_subcommand request; and __fish_seen_subcommand_from create" -l insecure -d 'Do not verify the proxy\'s web certificate (testing only)'
complete -c tsh -n "__fish_tsh_using_subcommand request; and __fish_seen_subcommand_from create" -s d -l debug -d 'Verbose output'
complete -c tsh -n "__fish_tsh_using_subcommand request; and __fish_seen_subcommand_from create" -s h -l help -d 'Print help'
complete -c tsh -n "__fish_tsh_using_subcommand request; and __fish_seen_subcommand_from ls" -s f -l format -d 'Output format: text, json or yaml' -r
complete -c tsh -n "__fish_tsh_using_subcommand request; and __fish_seen_subcommand_from ls" -l proxy -d 'Proxy address, host[:port] (no port: 443, then 3080)' -r
complete -c tsh -n "__fish_tsh_using_subcommand request; and __fish_seen_subcommand_from ls" -l user -d 'Teleport user [default: the current profile\'s, else $USER]' -r
complete -c tsh -n "__fish_tsh_using_subcommand request; and __fish_seen_subcommand_from ls" -l cluster -d 'Cluster to act on (a leaf of the root you signed in to)' -r
complete -c tsh -n "__fish_tsh_using_subcommand request; and __fish_seen_subcommand_from ls" -s i -l identity -d 'Identity file (from \'tctl auth sign\') instead of a profile' -r -F
complete -c tsh -n "__fish_tsh_using_subcommand request; and __fish_seen_subcommand_from ls" -l reviewable -d 'Only requests you may review'
complete -c tsh -n "__fish_tsh_using_subcommand request; and __fish_seen_subcommand_from ls" -l my-requests -d 'Only your own requests'
complete -c tsh -n "__fish_tsh_using_subcommand request; and __fish_seen_subcommand_from ls" -l insecure -d 'Do not verify the proxy\'s web certificate (testing only)'
complete -c tsh -n "__fish_tsh_using_subcommand request; and __fish_seen_subcommand_from ls" -s d -l debug -d 'Verbose output'
complete -c tsh -n "__fish_tsh_using_subcommand request; and __fish_seen_subcommand_from ls" -s h -l help -d 'Print help'
complete -c tsh -n "__fish_tsh_using_subcommand request; and __fish_seen_subcommand_from list" -s f -l format -d 'Output format: text, json or yaml' -r
complete -c tsh -n "__fish_tsh_using_subcommand request; and __fish_seen_subcommand_from list" -l proxy -d 'Proxy address, host[:port] (no port: 443, then 3080)' -r
complete -c tsh -n "__fish_tsh_using_subcommand request; and __fish_seen_subcommand_from list" -l user -d 'Teleport user [default: the current profile\'s, else $USER]' -r
complete -c tsh -n "__fish_tsh_using_subcommand request; and __fish_seen_subcommand_from list" -l cluster -d 'Cluster to act on (a leaf of the root you signed in to)' -r
complete -c tsh -n "__fish_tsh_using_subcommand request; and __fish_seen_subcommand_from list" -s i -l identity -d 'Identity file (from \'tctl auth sign\') instead of a profile' -r -F
complete -c tsh -n "__fish_tsh_using_subcommand request; and __fish_seen_subcommand_from list" -l reviewable -d 'Only requests you may review'
complete -c tsh -n "__fish_tsh_using_subcommand request; and __fish_seen_subcommand_from list" -l my-requests -d 'Only your own requests'
complete -c tsh -n "__fish_tsh_using_subcommand request; and __fish_seen_subcommand_from list" -l insecure -d 'Do not verify the proxy\'s web certificate (testing only)'
complete -c tsh -n "__fish_tsh_using_subcommand request; and __fish_seen_subcommand_from list" -s d -l debug -d 'Verbose output'
complete -c tsh -n "__fish_tsh_using_subcommand request; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c tsh -n "__fish_tsh_using_subcommand request; and __fish_seen_subcommand_from show" -s f -l format -d 'Output format: text, json or yaml' -r
complete -c tsh -n "__fish_tsh_using_subcommand request; and __fish_seen_subcommand_from show" -l proxy -d 'Proxy address, host[:port] (no port: 443, then 3080)' -r
complete -c tsh -n "__fish_tsh_using_subcommand request; and __fish_seen_subcommand_from show" -l user -d 'Teleport user [default: the current profile\'s, else $USER]' -r
complete -c tsh -n "__fish_tsh_using_subcommand request; and __fish_seen_subcommand_from show" -l cluster -d 'Cluster to act on (a leaf of the root you signed in to)' -r
complete -c tsh -n "__fish_tsh_using_subcommand request; and __fish_seen_subcommand_from show" -s i -l identity -d 'Identity file (from \'tctl auth sign\') instead of a profile' -r -F
complete -c tsh -n "__fish_tsh_using_subcommand request; and __fish_seen_subcommand_from show" -l insecure -d 'Do not verify the proxy\'s web certificate (testing only)'
complete -c tsh -n "__fish_tsh_using_subcommand request; and __fish_seen_subcommand_from show" -s d -l debug -d 'Verbose output'
complete -c tsh -n "__fish_tsh_using_subcommand request; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help'
complete -c tsh -n "__fish_tsh_using_subcommand request; and __fish_seen_subcommand_from review" -l reason -d 'Why' -r
complete -c tsh -n "__fish_tsh_using_subcommand request; and __fish_seen_subcommand_from review" -s f -l format -d 'Output format: text, json or yaml' -r
complete -c tsh -n "__fish_tsh_using_subcommand request; and __fish_seen_subcommand_from review" -l proxy -d 'Proxy address, host[:port] (no port: 443, then 3080)' -r
complete -c tsh -n "__fish_tsh_using_subcommand request; and __fish_seen_subcommand_from review" -l user -d 'Teleport user [default: the current profile\'s, else $USER]' -r
complete -c tsh -n "__fish_tsh_using_subcommand request; and __fish_seen_subcommand_from review" -l cluster -d 'Cluster to act on (a leaf of the root you signed in to)' -r
complete -c tsh -n "__fish_tsh_using_subcommand request; and __fish_seen_subcommand_from review" -s i -l identity -d 'Identity file (from \'tctl auth sign\') instead of a profile' -r -F
complete -c tsh -n "__fish_tsh_using_subcommand request; and __fish_seen_subcommand_from review" -l approve -d 'Approve it'
complete -c tsh -n "__fish_tsh_using_subcommand request; and __fish_seen_subcommand_from review" -l deny -d 'Deny it'
complete -c tsh -n "__fish_tsh_using_subcommand request; and __fish_seen_subcommand_from review" -l insecure -d 'Do not verify the proxy\'s web certificate (testing only)'
complete -c tsh -n "__fish_tsh_using_subcommand request; and __fish_seen_subcommand_from review" -s d -l debug -d 'Verbose output'
complete -c tsh -n "__fish_tsh_using_subcommand request; and __fish_seen_subcommand_from review" -s h -l help -d 'Print help'
complete -c tsh -n "__fish_tsh_using_subcommand request; and __fish_seen_subcommand_from drop" -s f -l format -d 'Output format: text (the new status), json or yaml (the requests still active)' -r
complete -c tsh -n "__fish_tsh_using_subcommand request; and __fish_seen_subcommand_from drop" -l proxy -d 'Proxy address, host[:port] (no port: 443, then 3080)' -r
complete -c tsh -n "__fish_tsh_using_subcommand request; and __fish_seen_subcommand_from drop" -l user -d 'Teleport user [default: the current profile\'s, else $USER]' -r
complete -c tsh -n "__fish_tsh_using_subcommand request; and __fish_seen_subcommand_from drop" -l cluster -d 'Cluster to act on (a leaf of the root you signed in to)' -r
complete -c tsh -n "__fish_tsh_using_subcommand request; and __fish_seen_subcommand_from drop" -s i -l identity -d 'Identity file (from \'tctl auth sign\') instead of a profile' -r -F
complete -c tsh -n "__fish_tsh_using_subcommand request; and __fish_seen_subcommand_from drop" -l insecure -d 'Do not verify the proxy\'s web certificate (testing only)'
complete -c tsh -n "__fish_tsh_using_subcommand request; and __fish_seen_subcommand_from drop" -s d -l debug -d 'Verbose output'
complete -c tsh -n "__fish_tsh_using_subcommand request; and __fish_seen_subcommand_from drop" -s h -l help -d 'Print help'
complete -c tsh -n "__fish_tsh_using_subcommand request; and __fish_seen_subcommand_from help" -f -a "create" -d 'Ask for roles for a while; waits for the decision unless --nowait'
complete -c tsh -n "__fish_tsh_using_subcommand request; and __fish_seen_subcommand_from help" -f -a "ls" -d 'List the requests you made or may review'
complete -c tsh -n "__fish_tsh_using_subcommand request; and __fish_seen_subcommand_from help" -f -a "show" -d 'Show one request with its reviews'
complete -c tsh -n "__fish_tsh_using_subcommand request; and __fish_seen_subcommand_from help" -f -a "review" -d 'Approve or deny someone\'s request'
complete -c tsh -n "__fish_tsh_using_subcommand request; and __fish_seen_subcommand_from help" -f -a "drop" -d 'Stop using approved requests (all of them without an id): new certificates without their roles'
complete -c tsh -n "__fish_tsh_using_subcommand request; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tsh -n "__fish_tsh_using_subcommand help; and not __fish_seen_subcommand_from login logout status ls ssh scp clusters version config proxy completion mfa access recordings play sessions join kube apps db request help" -f -a "login" -d 'Sign in to a cluster (or select a leaf cluster: tsh login <cluster>)'
complete -c tsh -n "__fish_tsh_using_subcommand help; and not __fish_seen_subcommand_from login logout status ls ssh scp clusters version config proxy completion mfa access recordings play sessions join kube apps db request help" -f -a "logout" -d 'Remove your keys and certificates'
complete -c tsh -n "__fish_tsh_using_subcommand help; and not __fish_seen_subcommand_from login logout status ls ssh scp clusters version config proxy completion mfa access recordings play sessions join kube apps db request help" -f -a "status" -d 'Show who you are signed in as'
complete -c tsh -n "__fish_tsh_using_subcommand help; and not __fish_seen_subcommand_from login logout status ls ssh scp clusters version config proxy completion mfa access recordings play sessions join kube apps db request help" -f -a "ls" -d 'List the nodes you can reach'
complete -c tsh -n "__fish_tsh_using_subcommand help; and not __fish_seen_subcommand_from login logout status ls ssh scp clusters version config proxy completion mfa access recordings play sessions join kube apps db request help" -f -a "ssh" -d 'Run a shell or a command on a node'
complete -c tsh -n "__fish_tsh_using_subcommand help; and not __fish_seen_subcommand_from login logout status ls ssh scp clusters version config proxy completion mfa access recordings play sessions join kube apps db request help" -f -a "scp" -d 'Copy files to or from a node (SFTP)'
complete -c tsh -n "__fish_tsh_using_subcommand help; and not __fish_seen_subcommand_from login logout status ls ssh scp clusters version config proxy completion mfa access recordings play sessions join kube apps db request help" -f -a "clusters" -d 'List the root cluster and the leaf clusters you can reach'
complete -c tsh -n "__fish_tsh_using_subcommand help; and not __fish_seen_subcommand_from login logout status ls ssh scp clusters version config proxy completion mfa access recordings play sessions join kube apps db request help" -f -a "version" -d 'Print the version'
complete -c tsh -n "__fish_tsh_using_subcommand help; and not __fish_seen_subcommand_from login logout status ls ssh scp clusters version config proxy completion mfa access recordings play sessions join kube apps db request help" -f -a "config" -d 'Print an OpenSSH client configuration for the clusters you can reach'
complete -c tsh -n "__fish_tsh_using_subcommand help; and not __fish_seen_subcommand_from login logout status ls ssh scp clusters version config proxy completion mfa access recordings play sessions join kube apps db request help" -f -a "proxy" -d 'Connect stdin/stdout to a node (OpenSSH ProxyCommand)'
complete -c tsh -n "__fish_tsh_using_subcommand help; and not __fish_seen_subcommand_from login logout status ls ssh scp clusters version config proxy completion mfa access recordings play sessions join kube apps db request help" -f -a "completion" -d 'Print a shell completion script'
complete -c tsh -n "__fish_tsh_using_subcommand help; and not __fish_seen_subcommand_from login logout status ls ssh scp clusters version config proxy completion mfa access recordings play sessions join kube apps db request help" -f -a "mfa" -d 'List, add and remove your second-factor (TOTP) devices'
complete -c tsh -n "__fish_tsh_using_subcommand help; and not __fish_seen_subcommand_from login logout status ls ssh scp clusters version config proxy completion mfa access recordings play sessions join kube apps db request help" -f -a "access" -d 'Explain why a login is allowed or denied'
complete -c tsh -n "__fish_tsh_using_subcommand help; and not __fish_seen_subcommand_from login logout status ls ssh scp clusters version config proxy completion mfa access recordings play sessions join kube apps db request help" -f -a "recordings" -d 'List recorded sessions'
complete -c tsh -n "__fish_tsh_using_subcommand help; and not __fish_seen_subcommand_from login logout status ls ssh scp clusters version config proxy completion mfa access recordings play sessions join kube apps db request help" -f -a "play" -d 'Replay a recorded session'
complete -c tsh -n "__fish_tsh_using_subcommand help; and not __fish_seen_subcommand_from login logout status ls ssh scp clusters version config proxy completion mfa access recordings play sessions join kube apps db request help" -f -a "sessions" -d 'List live sessions you may see or join'
complete -c tsh -n "__fish_tsh_using_subcommand help; and not __fish_seen_subcommand_from login logout status ls ssh scp clusters version config proxy completion mfa access recordings play sessions join kube apps db request help" -f -a "join" -d 'Join a live session (watch it, or type too)'
complete -c tsh -n "__fish_tsh_using_subcommand help; and not __fish_seen_subcommand_from login logout status ls ssh scp clusters version config proxy completion mfa access recordings play sessions join kube apps db request help" -f -a "kube" -d 'Kubernetes clusters: list them, log in to one, credentials for kubectl'
complete -c tsh -n "__fish_tsh_using_subcommand help; and not __fish_seen_subcommand_from login logout status ls ssh scp clusters version config proxy completion mfa access recordings play sessions join kube apps db request help" -f -a "apps" -d 'Applications: list the ones you can reach'
complete -c tsh -n "__fish_tsh_using_subcommand help; and not __fish_seen_subcommand_from login logout status ls ssh scp clusters version config proxy completion mfa access recordings play sessions join kube apps db request help" -f -a "db" -d 'Databases: list the ones you can reach'
complete -c tsh -n "__fish_tsh_using_subcommand help; and not __fish_seen_subcommand_from login logout status ls ssh scp clusters version config proxy completion mfa access recordings play sessions join kube apps db request help" -f -a "request" -d 'Access requests: ask for roles for a while, review others\' requests'
complete -c tsh -n "__fish_tsh_using_subcommand help; and not __fish_seen_subcommand_from login logout status ls ssh scp clusters version config proxy completion mfa access recordings play sessions join kube apps db request help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tsh -n "__fish_tsh_using_subcommand help; and __fish_seen_subcommand_from proxy" -f -a "ssh" -d 'Pipe stdin/stdout to a node\'s SSH port (for OpenSSH\'s ProxyCommand)'
complete -c tsh -n "__fish_tsh_using_subcommand help; and __fish_seen_subcommand_from proxy" -f -a "app" -d 'A local listener for an application that adds its certificate'
complete -c tsh -n "__fish_tsh_using_subcommand help; and __fish_seen_subcommand_from proxy" -f -a "db" -d 'A local listener for a database that adds its certificate'
complete -c tsh -n "__fish_tsh_using_subcommand help; and __fish_seen_subcommand_from mfa" -f -a "ls" -d 'List your devices'
complete -c tsh -n "__fish_tsh_using_subcommand help; and __fish_seen_subcommand_from mfa" -f -a "add" -d 'Register a device (an authenticator app)'
complete -c tsh -n "__fish_tsh_using_subcommand help; and __fish_seen_subcommand_from mfa" -f -a "rm" -d 'Remove a device'
complete -c tsh -n "__fish_tsh_using_subcommand help; and __fish_seen_subcommand_from access" -f -a "explain" -d 'Explain, check by check, whether login@node is allowed, as the node decides it'
complete -c tsh -n "__fish_tsh_using_subcommand help; and __fish_seen_subcommand_from recordings" -f -a "ls" -d 'List the recorded sessions your roles may see (newest first)'
complete -c tsh -n "__fish_tsh_using_subcommand help; and __fish_seen_subcommand_from sessions" -f -a "ls" -d 'List the running sessions you may see (yours, and those your roles may join)'
complete -c tsh -n "__fish_tsh_using_subcommand help; and __fish_seen_subcommand_from kube" -f -a "ls" -d 'List the Kubernetes clusters you can reach'
complete -c tsh -n "__fish_tsh_using_subcommand help; and __fish_seen_subcommand_from kube" -f -a "login" -d 'Write a kubeconfig entry for a Kubernetes cluster, then use kubectl'
complete -c tsh -n "__fish_tsh_using_subcommand help; and __fish_seen_subcommand_from kube" -f -a "credentials" -d 'Print credentials for kubectl (called by the kubeconfig tsh kube login writes)'
complete -c tsh -n "__fish_tsh_using_subcommand help; and __fish_seen_subcommand_from apps" -f -a "ls" -d 'List the applications you can reach'
complete -c tsh -n "__fish_tsh_using_subcommand help; and __fish_seen_subcommand_from apps" -f -a "login" -d 'Get a certificate for an application (the cluster that serves it decides)'
complete -c tsh -n "__fish_tsh_using_subcommand help; and __fish_seen_subcommand_from apps" -f -a "config" -d 'Show how to reach an application you logged in to'
complete -c tsh -n "__fish_tsh_using_subcommand help; and __fish_seen_subcommand_from apps" -f -a "logout" -d 'End application sessions (all of them without a name)'
complete -c tsh -n "__fish_tsh_using_subcommand help; and __fish_seen_subcommand_from db" -f -a "ls" -d 'List the databases you can reach'
complete -c tsh -n "__fish_tsh_using_subcommand help; and __fish_seen_subcommand_from db" -f -a "login" -d 'Get a certificate for a database (the cluster that serves it decides who you may be there)'
complete -c tsh -n "__fish_tsh_using_subcommand help; and __fish_seen_subcommand_from db" -f -a "connect" -d 'Connect to a database with its own client (psql), logging in first when needed'
complete -c tsh -n "__fish_tsh_using_subcommand help; and __fish_seen_subcommand_from db" -f -a "config" -d 'Show how to connect to a database you logged in to'
complete -c tsh -n "__fish_tsh_using_subcommand help; and __fish_seen_subcommand_from db" -f -a "env" -d 'Print the environment variables PostgreSQL clients read for a database you logged in to'
complete -c tsh -n "__fish_tsh_using_subcommand help; and __fish_seen_subcommand_from db" -f -a "logout" -d 'Remove database certificates (all of them without a name)'
complete -c tsh -n "__fish_tsh_using_subcommand help; and __fish_seen_subcommand_from request" -f -a "create" -d 'Ask for roles for a while; waits for the decision unless --nowait'
complete -c tsh -n "__fish_tsh_using_subcommand help; and __fish_seen_subcommand_from request" -f -a "ls" -d 'List the requests you made or may review'
complete -c tsh -n "__fish_tsh_using_subcommand help; and __fish_seen_subcommand_from request" -f -a "show" -d 'Show one request with its reviews'
complete -c tsh -n "__fish_tsh_using_subcommand help; and __fish_seen_subcommand_from request" -f -a "review" -d 'Approve or deny someone\'s request'
complete -c tsh -n "__fish_tsh_using_subcommand help; and __fish_seen_subcommand_from request" -f -a "drop" -d 'Stop using approved requests (all of them without an id): new certificates without their roles'
