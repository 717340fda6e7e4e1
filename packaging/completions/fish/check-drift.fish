complete -c check-drift -l color -d 'When to colour messages on stderr' -r -f -a "auto\t'Colour when stderr is a terminal and `NO_COLOR` is unset'
always\t'Always colour'
never\t'Never colour'"
complete -c check-drift -l dry-run -d 'Show every command and write this run would make, on stderr, and change nothing. Read-only queries still run'
complete -c check-drift -l json -d 'Print one JSON document on stdout (schema in docs/json/) instead of the text report'
complete -c check-drift -s v -l verbose -d 'Say more on stderr (commands run, timings)'
complete -c check-drift -s q -l quiet -d 'Say only warnings and errors on stderr'
complete -c check-drift -s h -l help -d 'Print help (see more with \'--help\')'
complete -c check-drift -s V -l version -d 'Print version'
