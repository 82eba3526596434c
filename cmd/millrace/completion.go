package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// completion prints a completion script for the shell named, generated from
// the command table, so that a new command completes without more work.
func completion(ctx context.Context, e *env, args []string) error {
	if len(args) != 1 {
		return errors.New("usage: millrace completion bash|zsh|fish")
	}
	var names []string
	for _, c := range commands {
		names = append(names, c.name)
	}
	switch args[0] {
	case "bash", "zsh":
		var b strings.Builder
		if args[0] == "zsh" {
			// zsh runs bash completions through bashcompinit.
			b.WriteString("#compdef millrace\nautoload -U +X bashcompinit && bashcompinit\n")
		}
		b.WriteString("_millrace() {\n  local cur=${COMP_WORDS[COMP_CWORD]}\n  if [ \"$COMP_CWORD\" -eq 1 ]; then\n")
		fmt.Fprintf(&b, "    COMPREPLY=($(compgen -W %q -- \"$cur\"))\n    return\n  fi\n", strings.Join(names, " "))
		b.WriteString("  if [ \"$COMP_CWORD\" -eq 2 ]; then\n    case ${COMP_WORDS[1]} in\n")
		for _, c := range commands {
			if len(c.subs) > 0 {
				fmt.Fprintf(&b, "      %s) COMPREPLY=($(compgen -W %q -- \"$cur\")) ;;\n", c.name, strings.Join(c.subs, " "))
			}
		}
		b.WriteString("    esac\n    return\n  fi\n  COMPREPLY=($(compgen -f -- \"$cur\"))\n}\ncomplete -F _millrace millrace\n")
		fmt.Fprint(e.stdout, b.String())
	case "fish":
		fmt.Fprintln(e.stdout, "complete -c millrace -f")
		for _, c := range commands {
			fmt.Fprintf(e.stdout, "complete -c millrace -n '__fish_use_subcommand' -a %s -d %q\n", c.name, c.summary)
			for _, s := range c.subs {
				fmt.Fprintf(e.stdout, "complete -c millrace -n '__fish_seen_subcommand_from %s' -a %s\n", c.name, s)
			}
		}
	default:
		return fmt.Errorf("completion %q: want bash, zsh or fish", args[0])
	}
	return nil
}
