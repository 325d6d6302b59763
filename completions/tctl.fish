# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_tctl_global_optspecs
    string join \n c/config= i/identity= auth-server= cluster= d/debug h/help
end

function __fish_tctl_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_tctl_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_tctl_using_subcommand
    set -l cmd (__fish_tctl_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c tctl -n "__fish_tctl_needs_command" -s c -l config -d 'teleport.yaml of the cluster (tctl on the auth host)' -r -F
complete -c tctl -n "__fish_tctl_needs_command" -s i -l identity -d 'Identity file (from \'tctl auth sign\')' -r -F
complete -c tctl -n "__fish_tctl_needs_command" -l auth-server -d 'Address of the cluster\'s proxy (with --identity)' -r
complete -c tctl -n "__fish_tctl_needs_command" -l cluster -d 'Act on this leaf cluster, through the root\'s tunnel, with your root certificate (the leaf\'s role map decides what you may do there)' -r
complete -c tctl -n "__fish_tctl_needs_command" -s d -l debug -d 'Verbose output'
complete -c tctl -n "__fish_tctl_needs_command" -s h -l help -d 'Print help'
complete -c tctl -n "__fish_tctl_needs_command" -f -a "users" -d 'Manage users'
complete -c tctl -n "__fish_tctl_needs_command" -f -a "tokens" -d 'Manage join and invitation tokens'
complete -c tctl -n "__fish_tctl_needs_command" -f -a "create" -d 'Create or replace resources from a YAML file'
complete -c tctl -n "__fish_tctl_needs_command" -f -a "get" -d 'Print resources'
complete -c tctl -n "__fish_tctl_needs_command" -f -a "edit" -d 'Edit a resource in $EDITOR'
complete -c tctl -n "__fish_tctl_needs_command" -f -a "rm" -d 'Delete a resource'
complete -c tctl -n "__fish_tctl_needs_command" -f -a "update" -d 'Update a remote cluster\'s labels'
complete -c tctl -n "__fish_tctl_needs_command" -f -a "auth" -d 'Sign identity files and export certificate authorities'
complete -c tctl -n "__fish_tctl_needs_command" -f -a "lock" -d 'Lock a user, role, login or node out of the cluster'
complete -c tctl -n "__fish_tctl_needs_command" -f -a "request" -d 'Access requests: list, approve, deny, delete'
complete -c tctl -n "__fish_tctl_needs_command" -f -a "map-roles" -d 'Show which local roles a user with the given remote roles would get'
complete -c tctl -n "__fish_tctl_needs_command" -f -a "status" -d 'Show the cluster and its certificate authorities'
complete -c tctl -n "__fish_tctl_needs_command" -f -a "access" -d 'Explain why a user\'s login is allowed or denied'
complete -c tctl -n "__fish_tctl_needs_command" -f -a "recordings" -d 'List recorded sessions'
complete -c tctl -n "__fish_tctl_needs_command" -f -a "version" -d 'Print the version'
complete -c tctl -n "__fish_tctl_needs_command" -f -a "completion" -d 'Print a shell completion script'
complete -c tctl -n "__fish_tctl_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tctl -n "__fish_tctl_using_subcommand users; and not __fish_seen_subcommand_from add update ls rm reset help" -s c -l config -d 'teleport.yaml of the cluster (tctl on the auth host)' -r -F
complete -c tctl -n "__fish_tctl_using_subcommand users; and not __fish_seen_subcommand_from add update ls rm reset help" -s i -l identity -d 'Identity file (from \'tctl auth sign\')' -r -F
complete -c tctl -n "__fish_tctl_using_subcommand users; and not __fish_seen_subcommand_from add update ls rm reset help" -l auth-server -d 'Address of the cluster\'s proxy (with --identity)' -r
complete -c tctl -n "__fish_tctl_using_subcommand users; and not __fish_seen_subcommand_from add update ls rm reset help" -l cluster -d 'Act on this leaf cluster, through the root\'s tunnel, with your root certificate (the leaf\'s role map decides what you may do there)' -r
complete -c tctl -n "__fish_tctl_using_subcommand users; and not __fish_seen_subcommand_from add update ls rm reset help" -s d -l debug -d 'Verbose output'
complete -c tctl -n "__fish_tctl_using_subcommand users; and not __fish_seen_subcommand_from add update ls rm reset help" -s h -l help -d 'Print help'
complete -c tctl -n "__fish_tctl_using_subcommand users; and not __fish_seen_subcommand_from add update ls rm reset help" -f -a "add" -d 'Add a user and print a one-time link to set the password'
complete -c tctl -n "__fish_tctl_using_subcommand users; and not __fish_seen_subcommand_from add update ls rm reset help" -f -a "update" -d 'Change a user\'s roles or logins'
complete -c tctl -n "__fish_tctl_using_subcommand users; and not __fish_seen_subcommand_from add update ls rm reset help" -f -a "ls" -d 'List users'
complete -c tctl -n "__fish_tctl_using_subcommand users; and not __fish_seen_subcommand_from add update ls rm reset help" -f -a "rm" -d 'Delete a user'
complete -c tctl -n "__fish_tctl_using_subcommand users; and not __fish_seen_subcommand_from add update ls rm reset help" -f -a "reset" -d 'Remove a user\'s password and print a link to set a new one'
complete -c tctl -n "__fish_tctl_using_subcommand users; and not __fish_seen_subcommand_from add update ls rm reset help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tctl -n "__fish_tctl_using_subcommand users; and __fish_seen_subcommand_from add" -l roles -d 'Roles, comma-separated' -r
complete -c tctl -n "__fish_tctl_using_subcommand users; and __fish_seen_subcommand_from add" -l logins -d 'Unix logins (the user\'s `logins` trait), comma-separated' -r
complete -c tctl -n "__fish_tctl_using_subcommand users; and __fish_seen_subcommand_from add" -s c -l config -d 'teleport.yaml of the cluster (tctl on the auth host)' -r -F
complete -c tctl -n "__fish_tctl_using_subcommand users; and __fish_seen_subcommand_from add" -s i -l identity -d 'Identity file (from \'tctl auth sign\')' -r -F
complete -c tctl -n "__fish_tctl_using_subcommand users; and __fish_seen_subcommand_from add" -l auth-server -d 'Address of the cluster\'s proxy (with --identity)' -r
complete -c tctl -n "__fish_tctl_using_subcommand users; and __fish_seen_subcommand_from add" -l cluster -d 'Act on this leaf cluster, through the root\'s tunnel, with your root certificate (the leaf\'s role map decides what you may do there)' -r
complete -c tctl -n "__fish_tctl_using_subcommand users; and __fish_seen_subcommand_from add" -s d -l debug -d 'Verbose output'
complete -c tctl -n "__fish_tctl_using_subcommand users; and __fish_seen_subcommand_from add" -s h -l help -d 'Print help'
complete -c tctl -n "__fish_tctl_using_subcommand users; and __fish_seen_subcommand_from update" -l set-roles -d 'Replace the roles, comma-separated' -r
complete -c tctl -n "__fish_tctl_using_subcommand users; and __fish_seen_subcommand_from update" -l set-logins -d 'Replace the logins, comma-separated' -r
complete -c tctl -n "__fish_tctl_using_subcommand users; and __fish_seen_subcommand_from update" -s c -l config -d 'teleport.yaml of the cluster (tctl on the auth host)' -r -F
complete -c tctl -n "__fish_tctl_using_subcommand users; and __fish_seen_subcommand_from update" -s i -l identity -d 'Identity file (from \'tctl auth sign\')' -r -F
complete -c tctl -n "__fish_tctl_using_subcommand users; and __fish_seen_subcommand_from update" -l auth-server -d 'Address of the cluster\'s proxy (with --identity)' -r
complete -c tctl -n "__fish_tctl_using_subcommand users; and __fish_seen_subcommand_from update" -l cluster -d 'Act on this leaf cluster, through the root\'s tunnel, with your root certificate (the leaf\'s role map decides what you may do there)' -r
complete -c tctl -n "__fish_tctl_using_subcommand users; and __fish_seen_subcommand_from update" -s d -l debug -d 'Verbose output'
complete -c tctl -n "__fish_tctl_using_subcommand users; and __fish_seen_subcommand_from update" -s h -l help -d 'Print help'
complete -c tctl -n "__fish_tctl_using_subcommand users; and __fish_seen_subcommand_from ls" -s f -l format -d 'Output format: text, json or yaml' -r
complete -c tctl -n "__fish_tctl_using_subcommand users; and __fish_seen_subcommand_from ls" -s c -l config -d 'teleport.yaml of the cluster (tctl on the auth host)' -r -F
complete -c tctl -n "__fish_tctl_using_subcommand users; and __fish_seen_subcommand_from ls" -s i -l identity -d 'Identity file (from \'tctl auth sign\')' -r -F
complete -c tctl -n "__fish_tctl_using_subcommand users; and __fish_seen_subcommand_from ls" -l auth-server -d 'Address of the cluster\'s proxy (with --identity)' -r
complete -c tctl -n "__fish_tctl_using_subcommand users; and __fish_seen_subcommand_from ls" -l cluster -d 'Act on this leaf cluster, through the root\'s tunnel, with your root certificate (the leaf\'s role map decides what you may do there)' -r
complete -c tctl -n "__fish_tctl_using_subcommand users; and __fish_seen_subcommand_from ls" -s d -l debug -d 'Verbose output'
complete -c tctl -n "__fish_tctl_using_subcommand users; and __fish_seen_subcommand_from ls" -s h -l help -d 'Print help'
complete -c tctl -n "__fish_tctl_using_subcommand users; and __fish_seen_subcommand_from rm" -s c -l config -d 'teleport.yaml of the cluster (tctl on the auth host)' -r -F
complete -c tctl -n "__fish_tctl_using_subcommand users; and __fish_seen_subcommand_from rm" -s i -l identity -d 'Identity file (from \'tctl auth sign\')' -r -F
complete -c tctl -n "__fish_tctl_using_subcommand users; and __fish_seen_subcommand_from rm" -l auth-server -d 'Address of the cluster\'s proxy (with --identity)' -r
complete -c tctl -n "__fish_tctl_using_subcommand users; and __fish_seen_subcommand_from rm" -l cluster -d 'Act on this leaf cluster, through the root\'s tunnel, with your root certificate (the leaf\'s role map decides what you may do there)' -r
complete -c tctl -n "__fish_tctl_using_subcommand users; and __fish_seen_subcommand_from rm" -s d -l debug -d 'Verbose output'
complete -c tctl -n "__fish_tctl_using_subcommand users; and __fish_seen_subcommand_from rm" -s h -l help -d 'Print help'
complete -c tctl -n "__fish_tctl_using_subcommand users; and __fish_seen_subcommand_from reset" -s c -l config -d 'teleport.yaml of the cluster (tctl on the auth host)' -r -F
complete -c tctl -n "__fish_tctl_using_subcommand users; and __fish_seen_subcommand_from reset" -s i -l identity -d 'Identity file (from \'tctl auth sign\')' -r -F
complete -c tctl -n "__fish_tctl_using_subcommand users; and __fish_seen_subcommand_from reset" -l auth-server -d 'Address of the cluster\'s proxy (with --identity)' -r
complete -c tctl -n "__fish_tctl_using_subcommand users; and __fish_seen_subcommand_from reset" -l cluster -d 'Act on this leaf cluster, through the root\'s tunnel, with your root certificate (the leaf\'s role map decides what you may do there)' -r
complete -c tctl -n "__fish_tctl_using_subcommand users; and __fish_seen_subcommand_from reset" -s d -l debug -d 'Verbose output'
complete -c tctl -n "__fish_tctl_using_subcommand users; and __fish_seen_subcommand_from reset" -s h -l help -d 'Print help'
complete -c tctl -n "__fish_tctl_using_subcommand users; and __fish_seen_subcommand_from help" -f -a "add" -d 'Add a user and print a one-time link to set the password'
complete -c tctl -n "__fish_tctl_using_subcommand users; and __fish_seen_subcommand_from help" -f -a "update" -d 'Change a user\'s roles or logins'
complete -c tctl -n "__fish_tctl_using_subcommand users; and __fish_seen_subcommand_from help" -f -a "ls" -d 'List users'
complete -c tctl -n "__fish_tctl_using_subcommand users; and __fish_seen_subcommand_from help" -f -a "rm" -d 'Delete a user'
complete -c tctl -n "__fish_tctl_using_subcommand users; and __fish_seen_subcommand_from help" -f -a "reset" -d 'Remove a user\'s password and print a link to set a new one'
complete -c tctl -n "__fish_tctl_using_subcommand users; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tctl -n "__fish_tctl_using_subcommand tokens; and not __fish_seen_subcommand_from add ls rm help" -s c -l config -d 'teleport.yaml of the cluster (tctl on the auth host)' -r -F
complete -c tctl -n "__fish_tctl_using_subcommand tokens; and not __fish_seen_subcommand_from add ls rm help" -s i -l identity -d 'Identity file (from \'tctl auth sign\')' -r -F
complete -c tctl -n "__fish_tctl_using_subcommand tokens; and not __fish_seen_subcommand_from add ls rm help" -l auth-server -d 'Address of the cluster\'s proxy (with --identity)' -r
complete -c tctl -n "__fish_tctl_using_subcommand tokens; and not __fish_seen_subcommand_from add ls rm help" -l cluster -d 'Act on this leaf cluster, through the root\'s tunnel, with your root certificate (the leaf\'s role map decides what you may do there)' -r
complete -c tctl -n "__fish_tctl_using_subcommand tokens; and not __fish_seen_subcommand_from add ls rm help" -s d -l debug -d 'Verbose output'
complete -c tctl -n "__fish_tctl_using_subcommand tokens; and not __fish_seen_subcommand_from add ls rm help" -s h -l help -d 'Print help'
complete -c tctl -n "__fish_tctl_using_subcommand tokens; and not __fish_seen_subcommand_from add ls rm help" -f -a "add" -d 'Create a token (trusted_cluster: invite a leaf cluster; node: join a node)'
complete -c tctl -n "__fish_tctl_using_subcommand tokens; and not __fish_seen_subcommand_from add ls rm help" -f -a "ls" -d 'List active tokens'
complete -c tctl -n "__fish_tctl_using_subcommand tokens; and not __fish_seen_subcommand_from add ls rm help" -f -a "rm" -d 'Delete a token'
complete -c tctl -n "__fish_tctl_using_subcommand tokens; and not __fish_seen_subcommand_from add ls rm help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tctl -n "__fish_tctl_using_subcommand tokens; and __fish_seen_subcommand_from add" -l type -d 'trusted_cluster or node (comma-separated for several)' -r
complete -c tctl -n "__fish_tctl_using_subcommand tokens; and __fish_seen_subcommand_from add" -l ttl -d 'How long the token is valid' -r
complete -c tctl -n "__fish_tctl_using_subcommand tokens; and __fish_seen_subcommand_from add" -l value -d 'Use this value instead of a random one (at least 16 characters)' -r
complete -c tctl -n "__fish_tctl_using_subcommand tokens; and __fish_seen_subcommand_from add" -l labels -d 'Labels, k=v,k2=v2 (copied to the remote_cluster a trusted_cluster token creates)' -r
complete -c tctl -n "__fish_tctl_using_subcommand tokens; and __fish_seen_subcommand_from add" -s f -l format -d 'text prints only the token; json and yaml print the token resource' -r
complete -c tctl -n "__fish_tctl_using_subcommand tokens; and __fish_seen_subcommand_from add" -s c -l config -d 'teleport.yaml of the cluster (tctl on the auth host)' -r -F
complete -c tctl -n "__fish_tctl_using_subcommand tokens; and __fish_seen_subcommand_from add" -s i -l identity -d 'Identity file (from \'tctl auth sign\')' -r -F
complete -c tctl -n "__fish_tctl_using_subcommand tokens; and __fish_seen_subcommand_from add" -l auth-server -d 'Address of the cluster\'s proxy (with --identity)' -r
complete -c tctl -n "__fish_tctl_using_subcommand tokens; and __fish_seen_subcommand_from add" -l cluster -d 'Act on this leaf cluster, through the root\'s tunnel, with your root certificate (the leaf\'s role map decides what you may do there)' -r
complete -c tctl -n "__fish_tctl_using_subcommand tokens; and __fish_seen_subcommand_from add" -s d -l debug -d 'Verbose output'
complete -c tctl -n "__fish_tctl_using_subcommand tokens; and __fish_seen_subcommand_from add" -s h -l help -d 'Print help'
complete -c tctl -n "__fish_tctl_using_subcommand tokens; and __fish_seen_subcommand_from ls" -s f -l format -d 'Output format: text, json or yaml' -r
complete -c tctl -n "__fish_tctl_using_subcommand tokens; and __fish_seen_subcommand_from ls" -s c -l config -d 'teleport.yaml of the cluster (tctl on the auth host)' -r -F
complete -c tctl -n "__fish_tctl_using_subcommand tokens; and __fish_seen_subcommand_from ls" -s i -l identity -d 'Identity file (from \'tctl auth sign\')' -r -F
complete -c tctl -n "__fish_tctl_using_subcommand tokens; and __fish_seen_subcommand_from ls" -l auth-server -d 'Address of the cluster\'s proxy (with --identity)' -r
complete -c tctl -n "__fish_tctl_using_subcommand tokens; and __fish_seen_subcommand_from ls" -l cluster -d 'Act on this leaf cluster, through the root\'s tunnel, with your root certificate (the leaf\'s role map decides what you may do there)' -r
complete -c tctl -n "__fish_tctl_using_subcommand tokens; and __fish_seen_subcommand_from ls" -s d -l debug -d 'Verbose output'
complete -c tctl -n "__fish_tctl_using_subcommand tokens; and __fish_seen_subcommand_from ls" -s h -l help -d 'Print help'
complete -c tctl -n "__fish_tctl_using_subcommand tokens; and __fish_seen_subcommand_from rm" -s c -l config -d 'teleport.yaml of the cluster (tctl on the auth host)' -r -F
complete -c tctl -n "__fish_tctl_using_subcommand tokens; and __fish_seen_subcommand_from rm" -s i -l identity -d 'Identity file (from \'tctl auth sign\')' -r -F
complete -c tctl -n "__fish_tctl_using_subcommand tokens; and __fish_seen_subcommand_from rm" -l auth-server -d 'Address of the cluster\'s proxy (with --identity)' -r
complete -c tctl -n "__fish_tctl_using_subcommand tokens; and __fish_seen_subcommand_from rm" -l cluster -d 'Act on this leaf cluster, through the root\'s tunnel, with your root certificate (the leaf\'s role map decides what you may do there)' -r
complete -c tctl -n "__fish_tctl_using_subcommand tokens; and __fish_seen_subcommand_from rm" -s d -l debug -d 'Verbose output'
complete -c tctl -n "__fish_tctl_using_subcommand tokens; and __fish_seen_subcommand_from rm" -s h -l help -d 'Print help'
complete -c tctl -n "__fish_tctl_using_subcommand tokens; and __fish_seen_subcommand_from help" -f -a "add" -d 'Create a token (trusted_cluster: invite a leaf cluster; node: join a node)'
complete -c tctl -n "__fish_tctl_using_subcommand tokens; and __fish_seen_subcommand_from help" -f -a "ls" -d 'List active tokens'
complete -c tctl -n "__fish_tctl_using_subcommand tokens; and __fish_seen_subcommand_from help" -f -a "rm" -d 'Delete a token'
complete -c tctl -n "__fish_tctl_using_subcommand tokens; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tctl -n "__fish_tctl_using_subcommand create" -s c -l config -d 'teleport.yaml of the cluster (tctl on the auth host)' -r -F
complete -c tctl -n "__fish_tctl_using_subcommand create" -s i -l identity -d 'Identity file (from \'tctl auth sign\')' -r -F
complete -c tctl -n "__fish_tctl_using_subcommand create" -l auth-server -d 'Address of the cluster\'s proxy (with --identity)' -r
complete -c tctl -n "__fish_tctl_using_subcommand create" -l cluster -d 'Act on this leaf cluster, through the root\'s tunnel, with your root certificate (the leaf\'s role map decides what you may do there)' -r
complete -c tctl -n "__fish_tctl_using_subcommand create" -s f -l force -d 'Replace resources that already exist'
complete -c tctl -n "__fish_tctl_using_subcommand create" -s d -l debug -d 'Verbose output'
complete -c tctl -n "__fish_tctl_using_subcommand create" -s h -l help -d 'Print help'
complete -c tctl -n "__fish_tctl_using_subcommand get" -s f -l format -d 'Output format: yaml, json or text' -r
complete -c tctl -n "__fish_tctl_using_subcommand get" -l limit -d 'With `events`: how many of the newest to print' -r
complete -c tctl -n "__fish_tctl_using_subcommand get" -s c -l config -d 'teleport.yaml of the cluster (tctl on the auth host)' -r -F
complete -c tctl -n "__fish_tctl_using_subcommand get" -s i -l identity -d 'Identity file (from \'tctl auth sign\')' -r -F
complete -c tctl -n "__fish_tctl_using_subcommand get" -l auth-server -d 'Address of the cluster\'s proxy (with --identity)' -r
complete -c tctl -n "__fish_tctl_using_subcommand get" -l cluster -d 'Act on this leaf cluster, through the root\'s tunnel, with your root certificate (the leaf\'s role map decides what you may do there)' -r
complete -c tctl -n "__fish_tctl_using_subcommand get" -l with-secrets -d 'Include private keys and connector secrets'
complete -c tctl -n "__fish_tctl_using_subcommand get" -s d -l debug -d 'Verbose output'
complete -c tctl -n "__fish_tctl_using_subcommand get" -s h -l help -d 'Print help'
complete -c tctl -n "__fish_tctl_using_subcommand edit" -s c -l config -d 'teleport.yaml of the cluster (tctl on the auth host)' -r -F
complete -c tctl -n "__fish_tctl_using_subcommand edit" -s i -l identity -d 'Identity file (from \'tctl auth sign\')' -r -F
complete -c tctl -n "__fish_tctl_using_subcommand edit" -l auth-server -d 'Address of the cluster\'s proxy (with --identity)' -r
complete -c tctl -n "__fish_tctl_using_subcommand edit" -l cluster -d 'Act on this leaf cluster, through the root\'s tunnel, with your root certificate (the leaf\'s role map decides what you may do there)' -r
complete -c tctl -n "__fish_tctl_using_subcommand edit" -s d -l debug -d 'Verbose output'
complete -c tctl -n "__fish_tctl_using_subcommand edit" -s h -l help -d 'Print help'
complete -c tctl -n "__fish_tctl_using_subcommand rm" -s c -l config -d 'teleport.yaml of the cluster (tctl on the auth host)' -r -F
complete -c tctl -n "__fish_tctl_using_subcommand rm" -s i -l identity -d 'Identity file (from \'tctl auth sign\')' -r -F
complete -c tctl -n "__fish_tctl_using_subcommand rm" -l auth-server -d 'Address of the cluster\'s proxy (with --identity)' -r
complete -c tctl -n "__fish_tctl_using_subcommand rm" -l cluster -d 'Act on this leaf cluster, through the root\'s tunnel, with your root certificate (the leaf\'s role map decides what you may do there)' -r
complete -c tctl -n "__fish_tctl_using_subcommand rm" -s d -l debug -d 'Verbose output'
complete -c tctl -n "__fish_tctl_using_subcommand rm" -s h -l help -d 'Print help'
complete -c tctl -n "__fish_tctl_using_subcommand update" -l set-labels -d 'Replace the labels, k=v,k2=v2' -r
complete -c tctl -n "__fish_tctl_using_subcommand update" -l set-ttl -d 'Expire the remote cluster after this long' -r
complete -c tctl -n "__fish_tctl_using_subcommand update" -s c -l config -d 'teleport.yaml of the cluster (tctl on the auth host)' -r -F
complete -c tctl -n "__fish_tctl_using_subcommand update" -s i -l identity -d 'Identity file (from \'tctl auth sign\')' -r -F
complete -c tctl -n "__fish_tctl_using_subcommand update" -l auth-server -d 'Address of the cluster\'s proxy (with --identity)' -r
complete -c tctl -n "__fish_tctl_using_subcommand update" -l cluster -d 'Act on this leaf cluster, through the root\'s tunnel, with your root certificate (the leaf\'s role map decides what you may do there)' -r
complete -c tctl -n "__fish_tctl_using_subcommand update" -s d -l debug -d 'Verbose output'
complete -c tctl -n "__fish_tctl_using_subcommand update" -s h -l help -d 'Print help'
complete -c tctl -n "__fish_tctl_using_subcommand auth; and not __fish_seen_subcommand_from sign rotate export help" -s c -l config -d 'teleport.yaml of the cluster (tctl on the auth host)' -r -F
complete -c tctl -n "__fish_tctl_using_subcommand auth; and not __fish_seen_subcommand_from sign rotate export help" -s i -l identity -d 'Identity file (from \'tctl auth sign\')' -r -F
complete -c tctl -n "__fish_tctl_using_subcommand auth; and not __fish_seen_subcommand_from sign rotate export help" -l auth-server -d 'Address of the cluster\'s proxy (with --identity)' -r
complete -c tctl -n "__fish_tctl_using_subcommand auth; and not __fish_seen_subcommand_from sign rotate export help" -l cluster -d 'Act on this leaf cluster, through the root\'s tunnel, with your root certificate (the leaf\'s role map decides what you may do there)' -r
complete -c tctl -n "__fish_tctl_using_subcommand auth; and not __fish_seen_subcommand_from sign rotate export help" -s d -l debug -d 'Verbose output'
complete -c tctl -n "__fish_tctl_using_subcommand auth; and not __fish_seen_subcommand_from sign rotate export help" -s h -l help -d 'Print help'
complete -c tctl -n "__fish_tctl_using_subcommand auth; and not __fish_seen_subcommand_from sign rotate export help" -f -a "sign" -d 'Write an identity file for a user, or a database server\'s certificate (--format=db)'
complete -c tctl -n "__fish_tctl_using_subcommand auth; and not __fish_seen_subcommand_from sign rotate export help" -f -a "rotate" -d 'Rotate a certificate authority of this cluster (its leaves follow over the tunnel)'
complete -c tctl -n "__fish_tctl_using_subcommand auth; and not __fish_seen_subcommand_from sign rotate export help" -f -a "export" -d 'Print this cluster\'s CA public keys in OpenSSH formats'
complete -c tctl -n "__fish_tctl_using_subcommand auth; and not __fish_seen_subcommand_from sign rotate export help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tctl -n "__fish_tctl_using_subcommand auth; and __fish_seen_subcommand_from sign" -l user -d 'The user (identity files)' -r
complete -c tctl -n "__fish_tctl_using_subcommand auth; and __fish_seen_subcommand_from sign" -s o -l out -d 'Where to write: the identity file, or with --format=db the prefix of <out>.crt, .key, .cas' -r -F
complete -c tctl -n "__fish_tctl_using_subcommand auth; and __fish_seen_subcommand_from sign" -l ttl -d 'Certificate TTL' -r
complete -c tctl -n "__fish_tctl_using_subcommand auth; and __fish_seen_subcommand_from sign" -l format -d 'What to write: file (an identity file) or db (a database server\'s certificate, key and CA)' -r -f -a "file\t''
db\t''"
complete -c tctl -n "__fish_tctl_using_subcommand auth; and __fish_seen_subcommand_from sign" -l host -d 'With --format=db: the names clients reach the database by, comma-separated' -r
complete -c tctl -n "__fish_tctl_using_subcommand auth; and __fish_seen_subcommand_from sign" -s c -l config -d 'teleport.yaml of the cluster (tctl on the auth host)' -r -F
complete -c tctl -n "__fish_tctl_using_subcommand auth; and __fish_seen_subcommand_from sign" -s i -l identity -d 'Identity file (from \'tctl auth sign\')' -r -F
complete -c tctl -n "__fish_tctl_using_subcommand auth; and __fish_seen_subcommand_from sign" -l auth-server -d 'Address of the cluster\'s proxy (with --identity)' -r
complete -c tctl -n "__fish_tctl_using_subcommand auth; and __fish_seen_subcommand_from sign" -l cluster -d 'Act on this leaf cluster, through the root\'s tunnel, with your root certificate (the leaf\'s role map decides what you may do there)' -r
complete -c tctl -n "__fish_tctl_using_subcommand auth; and __fish_seen_subcommand_from sign" -s d -l debug -d 'Verbose output'
complete -c tctl -n "__fish_tctl_using_subcommand auth; and __fish_seen_subcommand_from sign" -s h -l help -d 'Print help'
complete -c tctl -n "__fish_tctl_using_subcommand auth; and __fish_seen_subcommand_from rotate" -l type -d 'user, host, db or jwt; user and host when omitted' -r -f -a "user\t''
host\t''
db\t''
jwt\t''"
complete -c tctl -n "__fish_tctl_using_subcommand auth; and __fish_seen_subcommand_from rotate" -l grace-period -d 'How long certificates of the old keys stay trusted (0: not at all)' -r
complete -c tctl -n "__fish_tctl_using_subcommand auth; and __fish_seen_subcommand_from rotate" -l phase -d 'With --manual: init, update_clients, update_servers, standby or rollback' -r
complete -c tctl -n "__fish_tctl_using_subcommand auth; and __fish_seen_subcommand_from rotate" -s c -l config -d 'teleport.yaml of the cluster (tctl on the auth host)' -r -F
complete -c tctl -n "__fish_tctl_using_subcommand auth; and __fish_seen_subcommand_from rotate" -s i -l identity -d 'Identity file (from \'tctl auth sign\')' -r -F
complete -c tctl -n "__fish_tctl_using_subcommand auth; and __fish_seen_subcommand_from rotate" -l auth-server -d 'Address of the cluster\'s proxy (with --identity)' -r
complete -c tctl -n "__fish_tctl_using_subcommand auth; and __fish_seen_subcommand_from rotate" -l cluster -d 'Act on this leaf cluster, through the root\'s tunnel, with your root certificate (the leaf\'s role map decides what you may do there)' -r
complete -c tctl -n "__fish_tctl_using_subcommand auth; and __fish_seen_subcommand_from rotate" -l manual -d 'Move through the phases one command at a time'
complete -c tctl -n "__fish_tctl_using_subcommand auth; and __fish_seen_subcommand_from rotate" -s d -l debug -d 'Verbose output'
complete -c tctl -n "__fish_tctl_using_subcommand auth; and __fish_seen_subcommand_from rotate" -s h -l help -d 'Print help'
complete -c tctl -n "__fish_tctl_using_subcommand auth; and __fish_seen_subcommand_from export" -l type -d 'user (TrustedUserCAKeys lines) or host (@cert-authority lines); both when omitted' -r
complete -c tctl -n "__fish_tctl_using_subcommand auth; and __fish_seen_subcommand_from export" -s c -l config -d 'teleport.yaml of the cluster (tctl on the auth host)' -r -F
complete -c tctl -n "__fish_tctl_using_subcommand auth; and __fish_seen_subcommand_from export" -s i -l identity -d 'Identity file (from \'tctl auth sign\')' -r -F
complete -c tctl -n "__fish_tctl_using_subcommand auth; and __fish_seen_subcommand_from export" -l auth-server -d 'Address of the cluster\'s proxy (with --identity)' -r
complete -c tctl -n "__fish_tctl_using_subcommand auth; and __fish_seen_subcommand_from export" -l cluster -d 'Act on this leaf cluster, through the root\'s tunnel, with your root certificate (the leaf\'s role map decides what you may do there)' -r
complete -c tctl -n "__fish_tctl_using_subcommand auth; and __fish_seen_subcommand_from export" -s d -l debug -d 'Verbose output'
complete -c tctl -n "__fish_tctl_using_subcommand auth; and __fish_seen_subcommand_from export" -s h -l help -d 'Print help'
complete -c tctl -n "__fish_tctl_using_subcommand auth; and __fish_seen_subcommand_from help" -f -a "sign" -d 'Write an identity file for a user, or a database server\'s certificate (--format=db)'
complete -c tctl -n "__fish_tctl_using_subcommand auth; and __fish_seen_subcommand_from help" -f -a "rotate" -d 'Rotate a certificate authority of this cluster (its leaves follow over the tunnel)'
complete -c tctl -n "__fish_tctl_using_subcommand auth; and __fish_seen_subcommand_from help" -f -a "export" -d 'Print this cluster\'s CA public keys in OpenSSH formats'
complete -c tctl -n "__fish_tctl_using_subcommand auth; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tctl -n "__fish_tctl_using_subcommand lock" -l user -d 'Lock this Teleport user' -r
complete -c tctl -n "__fish_tctl_using_subcommand lock" -l role -d 'Lock everyone with this role' -r
complete -c tctl -n "__fish_tctl_using_subcommand lock" -l login -d 'Lock this Unix login' -r
complete -c tctl -n "__fish_tctl_using_subcommand lock" -l node -d 'Lock this node (its UUID or name; Teleport deprecates it in favour of --server-id)' -r
complete -c tctl -n "__fish_tctl_using_subcommand lock" -l server-id -d 'Lock this server (its UUID)' -r
complete -c tctl -n "__fish_tctl_using_subcommand lock" -l message -d 'Shown to whoever is locked out' -r
complete -c tctl -n "__fish_tctl_using_subcommand lock" -l ttl -d 'Lift the lock after this long, such as 10h' -r
complete -c tctl -n "__fish_tctl_using_subcommand lock" -l expires -d 'Lift the lock at this time (RFC 3339)' -r
complete -c tctl -n "__fish_tctl_using_subcommand lock" -s c -l config -d 'teleport.yaml of the cluster (tctl on the auth host)' -r -F
complete -c tctl -n "__fish_tctl_using_subcommand lock" -s i -l identity -d 'Identity file (from \'tctl auth sign\')' -r -F
complete -c tctl -n "__fish_tctl_using_subcommand lock" -l auth-server -d 'Address of the cluster\'s proxy (with --identity)' -r
complete -c tctl -n "__fish_tctl_using_subcommand lock" -l cluster -d 'Act on this leaf cluster, through the root\'s tunnel, with your root certificate (the leaf\'s role map decides what you may do there)' -r
complete -c tctl -n "__fish_tctl_using_subcommand lock" -s d -l debug -d 'Verbose output'
complete -c tctl -n "__fish_tctl_using_subcommand lock" -s h -l help -d 'Print help'
complete -c tctl -n "__fish_tctl_using_subcommand request; and not __fish_seen_subcommand_from ls approve deny rm help" -s c -l config -d 'teleport.yaml of the cluster (tctl on the auth host)' -r -F
complete -c tctl -n "__fish_tctl_using_subcommand request; and not __fish_seen_subcommand_from ls approve deny rm help" -s i -l identity -d 'Identity file (from \'tctl auth sign\')' -r -F
complete -c tctl -n "__fish_tctl_using_subcommand request; and not __fish_seen_subcommand_from ls approve deny rm help" -l auth-server -d 'Address of the cluster\'s proxy (with --identity)' -r
complete -c tctl -n "__fish_tctl_using_subcommand request; and not __fish_seen_subcommand_from ls approve deny rm help" -l cluster -d 'Act on this leaf cluster, through the root\'s tunnel, with your root certificate (the leaf\'s role map decides what you may do there)' -r
complete -c tctl -n "__fish_tctl_using_subcommand request; and not __fish_seen_subcommand_from ls approve deny rm help" -s d -l debug -d 'Verbose output'
complete -c tctl -n "__fish_tctl_using_subcommand request; and not __fish_seen_subcommand_from ls approve deny rm help" -s h -l help -d 'Print help'
complete -c tctl -n "__fish_tctl_using_subcommand request; and not __fish_seen_subcommand_from ls approve deny rm help" -f -a "ls" -d 'List the live requests'
complete -c tctl -n "__fish_tctl_using_subcommand request; and not __fish_seen_subcommand_from ls approve deny rm help" -f -a "approve" -d 'Approve a request (whatever its thresholds)'
complete -c tctl -n "__fish_tctl_using_subcommand request; and not __fish_seen_subcommand_from ls approve deny rm help" -f -a "deny" -d 'Deny a request (also after approval: its roles end at the certificates\' next use)'
complete -c tctl -n "__fish_tctl_using_subcommand request; and not __fish_seen_subcommand_from ls approve deny rm help" -f -a "rm" -d 'Delete a request'
complete -c tctl -n "__fish_tctl_using_subcommand request; and not __fish_seen_subcommand_from ls approve deny rm help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tctl -n "__fish_tctl_using_subcommand request; and __fish_seen_subcommand_from ls" -s f -l format -d 'Output format: text, json or yaml' -r
complete -c tctl -n "__fish_tctl_using_subcommand request; and __fish_seen_subcommand_from ls" -s c -l config -d 'teleport.yaml of the cluster (tctl on the auth host)' -r -F
complete -c tctl -n "__fish_tctl_using_subcommand request; and __fish_seen_subcommand_from ls" -s i -l identity -d 'Identity file (from \'tctl auth sign\')' -r -F
complete -c tctl -n "__fish_tctl_using_subcommand request; and __fish_seen_subcommand_from ls" -l auth-server -d 'Address of the cluster\'s proxy (with --identity)' -r
complete -c tctl -n "__fish_tctl_using_subcommand request; and __fish_seen_subcommand_from ls" -l cluster -d 'Act on this leaf cluster, through the root\'s tunnel, with your root certificate (the leaf\'s role map decides what you may do there)' -r
complete -c tctl -n "__fish_tctl_using_subcommand request; and __fish_seen_subcommand_from ls" -s d -l debug -d 'Verbose output'
complete -c tctl -n "__fish_tctl_using_subcommand request; and __fish_seen_subcommand_from ls" -s h -l help -d 'Print help'
complete -c tctl -n "__fish_tctl_using_subcommand request; and __fish_seen_subcommand_from approve" -l reason -d 'Why' -r
complete -c tctl -n "__fish_tctl_using_subcommand request; and __fish_seen_subcommand_from approve" -s c -l config -d 'teleport.yaml of the cluster (tctl on the auth host)' -r -F
complete -c tctl -n "__fish_tctl_using_subcommand request; and __fish_seen_subcommand_from approve" -s i -l identity -d 'Identity file (from \'tctl auth sign\')' -r -F
complete -c tctl -n "__fish_tctl_using_subcommand request; and __fish_seen_subcommand_from approve" -l auth-server -d 'Address of the cluster\'s proxy (with --identity)' -r
complete -c tctl -n "__fish_tctl_using_subcommand request; and __fish_seen_subcommand_from approve" -l cluster -d 'Act on this leaf cluster, through the root\'s tunnel, with your root certificate (the leaf\'s role map decides what you may do there)' -r
complete -c tctl -n "__fish_tctl_using_subcommand request; and __fish_seen_subcommand_from approve" -s d -l debug -d 'Verbose output'
complete -c tctl -n "__fish_tctl_using_subcommand request; and __fish_seen_subcommand_from approve" -s h -l help -d 'Print help'
complete -c tctl -n "__fish_tctl_using_subcommand request; and __fish_seen_subcommand_from deny" -l reason -d 'Why' -r
complete -c tctl -n "__fish_tctl_using_subcommand request; and __fish_seen_subcommand_from deny" -s c -l config -d 'teleport.yaml of the cluster (tctl on the auth host)' -r -F
complete -c tctl -n "__fish_tctl_using_subcommand request; and __fish_seen_subcommand_from deny" -s i -l identity -d 'Identity file (from \'tctl auth sign\')' -r -F
complete -c tctl -n "__fish_tctl_using_subcommand request; and __fish_seen_subcommand_from deny" -l auth-server -d 'Address of the cluster\'s proxy (with --identity)' -r
complete -c tctl -n "__fish_tctl_using_subcommand request; and __fish_seen_subcommand_from deny" -l cluster -d 'Act on this leaf cluster, through the root\'s tunnel, with your root certificate (the leaf\'s role map decides what you may do there)' -r
complete -c tctl -n "__fish_tctl_using_subcommand request; and __fish_seen_subcommand_from deny" -s d -l debug -d 'Verbose output'
complete -c tctl -n "__fish_tctl_using_subcommand request; and __fish_seen_subcommand_from deny" -s h -l help -d 'Print help'
complete -c tctl -n "__fish_tctl_using_subcommand request; and __fish_seen_subcommand_from rm" -s c -l config -d 'teleport.yaml of the cluster (tctl on the auth host)' -r -F
complete -c tctl -n "__fish_tctl_using_subcommand request; and __fish_seen_subcommand_from rm" -s i -l identity -d 'Identity file (from \'tctl auth sign\')' -r -F
complete -c tctl -n "__fish_tctl_using_subcommand request; and __fish_seen_subcommand_from rm" -l auth-server -d 'Address of the cluster\'s proxy (with --identity)' -r
complete -c tctl -n "__fish_tctl_using_subcommand request; and __fish_seen_subcommand_from rm" -l cluster -d 'Act on this leaf cluster, through the root\'s tunnel, with your root certificate (the leaf\'s role map decides what you may do there)' -r
complete -c tctl -n "__fish_tctl_using_subcommand request; and __fish_seen_subcommand_from rm" -s d -l debug -d 'Verbose output'
complete -c tctl -n "__fish_tctl_using_subcommand request; and __fish_seen_subcommand_from rm" -s h -l help -d 'Print help'
complete -c tctl -n "__fish_tctl_using_subcommand request; and __fish_seen_subcommand_from help" -f -a "ls" -d 'List the live requests'
complete -c tctl -n "__fish_tctl_using_subcommand request; and __fish_seen_subcommand_from help" -f -a "approve" -d 'Approve a request (whatever its thresholds)'
complete -c tctl -n "__fish_tctl_using_subcommand request; and __fish_seen_subcommand_from help" -f -a "deny" -d 'Deny a request (also after approval: its roles end at the certificates\' next use)'
complete -c tctl -n "__fish_tctl_using_subcommand request; and __fish_seen_subcommand_from help" -f -a "rm" -d 'Delete a request'
complete -c tctl -n "__fish_tctl_using_subcommand request; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tctl -n "__fish_tctl_using_subcommand map-roles" -l roles -d 'The root user\'s roles, comma-separated' -r
complete -c tctl -n "__fish_tctl_using_subcommand map-roles" -l cluster -d 'Use the role_map stored for this trusted (root) cluster' -r
complete -c tctl -n "__fish_tctl_using_subcommand map-roles" -l file -d 'Use the role_map in this trusted_cluster YAML (no cluster needed)' -r
complete -c tctl -n "__fish_tctl_using_subcommand map-roles" -s f -l format -d 'Output format: text, json or yaml' -r
complete -c tctl -n "__fish_tctl_using_subcommand map-roles" -s c -l config -d 'teleport.yaml of the cluster (tctl on the auth host)' -r -F
complete -c tctl -n "__fish_tctl_using_subcommand map-roles" -s i -l identity -d 'Identity file (from \'tctl auth sign\')' -r -F
complete -c tctl -n "__fish_tctl_using_subcommand map-roles" -l auth-server -d 'Address of the cluster\'s proxy (with --identity)' -r
complete -c tctl -n "__fish_tctl_using_subcommand map-roles" -s d -l debug -d 'Verbose output'
complete -c tctl -n "__fish_tctl_using_subcommand map-roles" -s h -l help -d 'Print help'
complete -c tctl -n "__fish_tctl_using_subcommand status" -s c -l config -d 'teleport.yaml of the cluster (tctl on the auth host)' -r -F
complete -c tctl -n "__fish_tctl_using_subcommand status" -s i -l identity -d 'Identity file (from \'tctl auth sign\')' -r -F
complete -c tctl -n "__fish_tctl_using_subcommand status" -l auth-server -d 'Address of the cluster\'s proxy (with --identity)' -r
complete -c tctl -n "__fish_tctl_using_subcommand status" -l cluster -d 'Act on this leaf cluster, through the root\'s tunnel, with your root certificate (the leaf\'s role map decides what you may do there)' -r
complete -c tctl -n "__fish_tctl_using_subcommand status" -s d -l debug -d 'Verbose output'
complete -c tctl -n "__fish_tctl_using_subcommand status" -s h -l help -d 'Print help'
complete -c tctl -n "__fish_tctl_using_subcommand access; and not __fish_seen_subcommand_from explain help" -s c -l config -d 'teleport.yaml of the cluster (tctl on the auth host)' -r -F
complete -c tctl -n "__fish_tctl_using_subcommand access; and not __fish_seen_subcommand_from explain help" -s i -l identity -d 'Identity file (from \'tctl auth sign\')' -r -F
complete -c tctl -n "__fish_tctl_using_subcommand access; and not __fish_seen_subcommand_from explain help" -l auth-server -d 'Address of the cluster\'s proxy (with --identity)' -r
complete -c tctl -n "__fish_tctl_using_subcommand access; and not __fish_seen_subcommand_from explain help" -l cluster -d 'Act on this leaf cluster, through the root\'s tunnel, with your root certificate (the leaf\'s role map decides what you may do there)' -r
complete -c tctl -n "__fish_tctl_using_subcommand access; and not __fish_seen_subcommand_from explain help" -s d -l debug -d 'Verbose output'
complete -c tctl -n "__fish_tctl_using_subcommand access; and not __fish_seen_subcommand_from explain help" -s h -l help -d 'Print help'
complete -c tctl -n "__fish_tctl_using_subcommand access; and not __fish_seen_subcommand_from explain help" -f -a "explain" -d 'Explain, check by check, whether a user may log in as login@node, as the node decides it'
complete -c tctl -n "__fish_tctl_using_subcommand access; and not __fish_seen_subcommand_from explain help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tctl -n "__fish_tctl_using_subcommand access; and __fish_seen_subcommand_from explain" -l user -d 'The user (of the cluster tctl is signed in to)' -r
complete -c tctl -n "__fish_tctl_using_subcommand access; and __fish_seen_subcommand_from explain" -s f -l format -d 'Output format: text, json or yaml' -r
complete -c tctl -n "__fish_tctl_using_subcommand access; and __fish_seen_subcommand_from explain" -s c -l config -d 'teleport.yaml of the cluster (tctl on the auth host)' -r -F
complete -c tctl -n "__fish_tctl_using_subcommand access; and __fish_seen_subcommand_from explain" -s i -l identity -d 'Identity file (from \'tctl auth sign\')' -r -F
complete -c tctl -n "__fish_tctl_using_subcommand access; and __fish_seen_subcommand_from explain" -l auth-server -d 'Address of the cluster\'s proxy (with --identity)' -r
complete -c tctl -n "__fish_tctl_using_subcommand access; and __fish_seen_subcommand_from explain" -l cluster -d 'Act on this leaf cluster, through the root\'s tunnel, with your root certificate (the leaf\'s role map decides what you may do there)' -r
complete -c tctl -n "__fish_tctl_using_subcommand access; and __fish_seen_subcommand_from explain" -s d -l debug -d 'Verbose output'
complete -c tctl -n "__fish_tctl_using_subcommand access; and __fish_seen_subcommand_from explain" -s h -l help -d 'Print help'
complete -c tctl -n "__fish_tctl_using_subcommand access; and __fish_seen_subcommand_from help" -f -a "explain" -d 'Explain, check by check, whether a user may log in as login@node, as the node decides it'
complete -c tctl -n "__fish_tctl_using_subcommand access; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tctl -n "__fish_tctl_using_subcommand recordings; and not __fish_seen_subcommand_from ls help" -s c -l config -d 'teleport.yaml of the cluster (tctl on the auth host)' -r -F
complete -c tctl -n "__fish_tctl_using_subcommand recordings; and not __fish_seen_subcommand_from ls help" -s i -l identity -d 'Identity file (from \'tctl auth sign\')' -r -F
complete -c tctl -n "__fish_tctl_using_subcommand recordings; and not __fish_seen_subcommand_from ls help" -l auth-server -d 'Address of the cluster\'s proxy (with --identity)' -r
complete -c tctl -n "__fish_tctl_using_subcommand recordings; and not __fish_seen_subcommand_from ls help" -l cluster -d 'Act on this leaf cluster, through the root\'s tunnel, with your root certificate (the leaf\'s role map decides what you may do there)' -r
complete -c tctl -n "__fish_tctl_using_subcommand recordings; and not __fish_seen_subcommand_from ls help" -s d -l debug -d 'Verbose output'
complete -c tctl -n "__fish_tctl_using_subcommand recordings; and not __fish_seen_subcommand_from ls help" -s h -l help -d 'Print help'
complete -c tctl -n "__fish_tctl_using_subcommand recordings; and not __fish_seen_subcommand_from ls help" -f -a "ls" -d 'List recorded sessions (newest first); play one with \'tsh play <id>\''
complete -c tctl -n "__fish_tctl_using_subcommand recordings; and not __fish_seen_subcommand_from ls help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tctl -n "__fish_tctl_using_subcommand recordings; and __fish_seen_subcommand_from ls" -s f -l format -d 'Output format: text, json or yaml' -r
complete -c tctl -n "__fish_tctl_using_subcommand recordings; and __fish_seen_subcommand_from ls" -s c -l config -d 'teleport.yaml of the cluster (tctl on the auth host)' -r -F
complete -c tctl -n "__fish_tctl_using_subcommand recordings; and __fish_seen_subcommand_from ls" -s i -l identity -d 'Identity file (from \'tctl auth sign\')' -r -F
complete -c tctl -n "__fish_tctl_using_subcommand recordings; and __fish_seen_subcommand_from ls" -l auth-server -d 'Address of the cluster\'s proxy (with --identity)' -r
complete -c tctl -n "__fish_tctl_using_subcommand recordings; and __fish_seen_subcommand_from ls" -l cluster -d 'Act on this leaf cluster, through the root\'s tunnel, with your root certificate (the leaf\'s role map decides what you may do there)' -r
complete -c tctl -n "__fish_tctl_using_subcommand recordings; and __fish_seen_subcommand_from ls" -s d -l debug -d 'Verbose output'
complete -c tctl -n "__fish_tctl_using_subcommand recordings; and __fish_seen_subcommand_from ls" -s h -l help -d 'Print help'
complete -c tctl -n "__fish_tctl_using_subcommand recordings; and __fish_seen_subcommand_from help" -f -a "ls" -d 'List recorded sessions (newest first); play one with \'tsh play <id>\''
complete -c tctl -n "__fish_tctl_using_subcommand recordings; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tctl -n "__fish_tctl_using_subcommand version" -s c -l config -d 'teleport.yaml of the cluster (tctl on the auth host)' -r -F
complete -c tctl -n "__fish_tctl_using_subcommand version" -s i -l identity -d 'Identity file (from \'tctl auth sign\')' -r -F
complete -c tctl -n "__fish_tctl_using_subcommand version" -l auth-server -d 'Address of the cluster\'s proxy (with --identity)' -r
complete -c tctl -n "__fish_tctl_using_subcommand version" -l cluster -d 'Act on this leaf cluster, through the root\'s tunnel, with your root certificate (the leaf\'s role map decides what you may do there)' -r
complete -c tctl -n "__fish_tctl_using_subcommand version" -s d -l debug -d 'Verbose output'
complete -c tctl -n "__fish_tctl_using_subcommand version" -s h -l help -d 'Print help'
complete -c tctl -n "__fish_tctl_using_subcommand completion" -s c -l config -d 'teleport.yaml of the cluster (tctl on the auth host)' -r -F
complete -c tctl -n "__fish_tctl_using_subcommand completion" -s i -l identity -d 'Identity file (from \'tctl auth sign\')' -r -F
complete -c tctl -n "__fish_tctl_using_subcommand completion" -l auth-server -d 'Address of the cluster\'s proxy (with --identity)' -r
complete -c tctl -n "__fish_tctl_using_subcommand completion" -l cluster -d 'Act on this leaf cluster, through the root\'s tunnel, with your root certificate (the leaf\'s role map decides what you may do there)' -r
complete -c tctl -n "__fish_tctl_using_subcommand completion" -s d -l debug -d 'Verbose output'
complete -c tctl -n "__fish_tctl_using_subcommand completion" -s h -l help -d 'Print help'
complete -c tctl -n "__fish_tctl_using_subcommand help; and not __fish_seen_subcommand_from users tokens create get edit rm update auth lock request map-roles status access recordings version completion help" -f -a "users" -d 'Manage users'
complete -c tctl -n "__fish_tctl_using_subcommand help; and not __fish_seen_subcommand_from users tokens create get edit rm update auth lock request map-roles status access recordings version completion help" -f -a "tokens" -d 'Manage join and invitation tokens'
complete -c tctl -n "__fish_tctl_using_subcommand help; and not __fish_seen_subcommand_from users tokens create get edit rm update auth lock request map-roles status access recordings version completion help" -f -a "create" -d 'Create or replace resources from a YAML file'
complete -c tctl -n "__fish_tctl_using_subcommand help; and not __fish_seen_subcommand_from users tokens create get edit rm update auth lock request map-roles status access recordings version completion help" -f -a "get" -d 'Print resources'
complete -c tctl -n "__fish_tctl_using_subcommand help; and not __fish_seen_subcommand_from users tokens create get edit rm update auth lock request map-roles status access recordings version completion help" -f -a "edit" -d 'Edit a resource in $EDITOR'
complete -c tctl -n "__fish_tctl_using_subcommand help; and not __fish_seen_subcommand_from users tokens create get edit rm update auth lock request map-roles status access recordings version completion help" -f -a "rm" -d 'Delete a resource'
complete -c tctl -n "__fish_tctl_using_subcommand help; and not __fish_seen_subcommand_from users tokens create get edit rm update auth lock request map-roles status access recordings version completion help" -f -a "update" -d 'Update a remote cluster\'s labels'
complete -c tctl -n "__fish_tctl_using_subcommand help; and not __fish_seen_subcommand_from users tokens create get edit rm update auth lock request map-roles status access recordings version completion help" -f -a "auth" -d 'Sign identity files and export certificate authorities'
complete -c tctl -n "__fish_tctl_using_subcommand help; and not __fish_seen_subcommand_from users tokens create get edit rm update auth lock request map-roles status access recordings version completion help" -f -a "lock" -d 'Lock a user, role, login or node out of the cluster'
complete -c tctl -n "__fish_tctl_using_subcommand help; and not __fish_seen_subcommand_from users tokens create get edit rm update auth lock request map-roles status access recordings version completion help" -f -a "request" -d 'Access requests: list, approve, deny, delete'
complete -c tctl -n "__fish_tctl_using_subcommand help; and not __fish_seen_subcommand_from users tokens create get edit rm update auth lock request map-roles status access recordings version completion help" -f -a "map-roles" -d 'Show which local roles a user with the given remote roles would get'
complete -c tctl -n "__fish_tctl_using_subcommand help; and not __fish_seen_subcommand_from users tokens create get edit rm update auth lock request map-roles status access recordings version completion help" -f -a "status" -d 'Show the cluster and its certificate authorities'
complete -c tctl -n "__fish_tctl_using_subcommand help; and not __fish_seen_subcommand_from users tokens create get edit rm update auth lock request map-roles status access recordings version completion help" -f -a "access" -d 'Explain why a user\'s login is allowed or denied'
complete -c tctl -n "__fish_tctl_using_subcommand help; and not __fish_seen_subcommand_from users tokens create get edit rm update auth lock request map-roles status access recordings version completion help" -f -a "recordings" -d 'List recorded sessions'
complete -c tctl -n "__fish_tctl_using_subcommand help; and not __fish_seen_subcommand_from users tokens create get edit rm update auth lock request map-roles status access recordings version completion help" -f -a "version" -d 'Print the version'
complete -c tctl -n "__fish_tctl_using_subcommand help; and not __fish_seen_subcommand_from users tokens create get edit rm update auth lock request map-roles status access recordings version completion help" -f -a "completion" -d 'Print a shell completion script'
complete -c tctl -n "__fish_tctl_using_subcommand help; and not __fish_seen_subcommand_from users tokens create get edit rm update auth lock request map-roles status access recordings version completion help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tctl -n "__fish_tctl_using_subcommand help; and __fish_seen_subcommand_from users" -f -a "add" -d 'Add a user and print a one-time link to set the password'
complete -c tctl -n "__fish_tctl_using_subcommand help; and __fish_seen_subcommand_from users" -f -a "update" -d 'Change a user\'s roles or logins'
complete -c tctl -n "__fish_tctl_using_subcommand help; and __fish_seen_subcommand_from users" -f -a "ls" -d 'List users'
complete -c tctl -n "__fish_tctl_using_subcommand help; and __fish_seen_subcommand_from users" -f -a "rm" -d 'Delete a user'
complete -c tctl -n "__fish_tctl_using_subcommand help; and __fish_seen_subcommand_from users" -f -a "reset" -d 'Remove a user\'s password and print a link to set a new one'
complete -c tctl -n "__fish_tctl_using_subcommand help; and __fish_seen_subcommand_from tokens" -f -a "add" -d 'Create a token (trusted_cluster: invite a leaf cluster; node: join a node)'
complete -c tctl -n "__fish_tctl_using_subcommand help; and __fish_seen_subcommand_from tokens" -f -a "ls" -d 'List active tokens'
complete -c tctl -n "__fish_tctl_using_subcommand help; and __fish_seen_subcommand_from tokens" -f -a "rm" -d 'Delete a token'
complete -c tctl -n "__fish_tctl_using_subcommand help; and __fish_seen_subcommand_from auth" -f -a "sign" -d 'Write an identity file for a user, or a database server\'s certificate (--format=db)'
complete -c tctl -n "__fish_tctl_using_subcommand help; and __fish_seen_subcommand_from auth" -f -a "rotate" -d 'Rotate a certificate authority of this cluster (its leaves follow over the tunnel)'
complete -c tctl -n "__fish_tctl_using_subcommand help; and __fish_seen_subcommand_from auth" -f -a "export" -d 'Print this cluster\'s CA public keys in OpenSSH formats'
complete -c tctl -n "__fish_tctl_using_subcommand help; and __fish_seen_subcommand_from request" -f -a "ls" -d 'List the live requests'
complete -c tctl -n "__fish_tctl_using_subcommand help; and __fish_seen_subcommand_from request" -f -a "approve" -d 'Approve a request (whatever its thresholds)'
complete -c tctl -n "__fish_tctl_using_subcommand help; and __fish_seen_subcommand_from request" -f -a "deny" -d 'Deny a request (also after approval: its roles end at the certificates\' next use)'
complete -c tctl -n "__fish_tctl_using_subcommand help; and __fish_seen_subcommand_from request" -f -a "rm" -d 'Delete a request'
complete -c tctl -n "__fish_tctl_using_subcommand help; and __fish_seen_subcommand_from access" -f -a "explain" -d 'Explain, check by check, whether a user may log in as login@node, as the node decides it'
complete -c tctl -n "__fish_tctl_using_subcommand help; and __fish_seen_subcommand_from recordings" -f -a "ls" -d 'List recorded sessions (newest first); play one with \'tsh play <id>\''
