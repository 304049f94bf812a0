"""`mizzenctl completion bash|zsh`: shell completion generated from the argparse tree
itself, so every command, alias, flag and choice is offered as `--help` describes it, and
a new command is completed without anyone touching this file.  No dependency (argcomplete
would need a Python start per <Tab>; these scripts are static).

The scripts walk the words typed so far to the command they name (skipping flags and the
values of flags that take one), then offer that command's subcommands, or its flags when
the word starts with `-`, or a flag's choices (files for flags that take a path).

    source <(mizzenctl completion bash)                   # bash, this shell
    mizzenctl completion zsh > "${fpath[1]}/_mizzenctl"  # zsh, from the next one
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

__all__ = ["Command", "Option", "add_parser", "bash_script", "command_tree", "zsh_script"]

FILES = "__files__"
# Flags whose value is a path (by destination), beyond those whose metavar says FILE or DIR.
_PATH_DESTS = {"filename", "state_dir", "output_file", "kube_config", "token_file", "injectConfigFile",
               "meshConfigFile", "valuesFile"}


@dataclass
class Option:
    flags: tuple[str, ...]
    help: str
    takes_value: bool
    values: tuple[str, ...] = ()  # choices, or (FILES,) for a path


@dataclass
class Command:
    path: tuple[str, ...]
    help: str = ""
    # name (aliases included) -> the canonical name of a subcommand
    names: dict[str, str] = field(default_factory=dict)
    subcommands: dict[str, Command] = field(default_factory=dict)
    options: list[Option] = field(default_factory=list)
    # The choices of its positional arguments (`completion bash|zsh`).
    arguments: tuple[str, ...] = ()

    def walk(self) -> list[Command]:
        return [self, *(c for sub in self.subcommands.values() for c in sub.walk())]


def _option(action: argparse.Action) -> Option | None:
    if action.help == argparse.SUPPRESS or not action.option_strings:
        return None
    takes_value = action.nargs != 0
    values: tuple[str, ...] = ()
    if takes_value and action.choices is not None:
        values = tuple(str(choice) for choice in action.choices)
    elif takes_value and (str(action.metavar or "").upper() in ("FILE", "DIR") or action.dest in _PATH_DESTS):
        values = (FILES,)
    return Option(tuple(action.option_strings), " ".join(str(action.help or "").split()), takes_value, values)


def command_tree(parser: argparse.ArgumentParser, path: tuple[str, ...] = (), help: str = "") -> Command:
    """The commands under `parser`, with their flags (argparse's own structures: each
    subparsers action's choices and the help of its primary names)."""
    command = Command(path, help)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: str(a.help or "") for a in action._choices_actions}
            canonical: dict[int, str] = {}
            for name, sub in action.choices.items():
                canonical.setdefault(id(sub), name)
                command.names[name] = canonical[id(sub)]
                if canonical[id(sub)] == name:
                    command.subcommands[name] = command_tree(sub, (*path, name), helps.get(name, ""))
        elif not action.option_strings and action.choices is not None:
            command.arguments += tuple(str(choice) for choice in action.choices)
        elif (option := _option(action)) is not None:
            command.options.append(option)
    return command


def _key(path: tuple[str, ...], word: str | None = None) -> str:
    return " ".join(path) + ("" if word is None else f"|{word}")


def _case(entries: list[tuple[list[str], str]], indent: str = "        ") -> str:
    """A shell `case` body: each entry's patterns (quoted) and its action."""
    return "\n".join(f"{indent}{'|'.join(_quote(p) for p in patterns)}) {action} ;;" for patterns, action in entries)


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def _functions(root: Command, prog: str) -> str:
    """The shell functions both scripts share (bash and zsh read the same `case`)."""
    commands = root.walk()
    nexts = [([_key(c.path, name) for name, target in c.names.items() if target == canonical],
              f"echo {_quote(canonical)}") for c in commands for canonical in c.subcommands]
    valued = [_key(c.path, flag) for c in commands for o in c.options if o.takes_value for flag in o.flags]
    values = [([_key(c.path, flag) for flag in o.flags], f"echo {_quote(' '.join(o.values))}")
              for c in commands for o in c.options if o.values]
    subs = [([_key(c.path)], f"echo {_quote(' '.join([*sorted(c.names), *c.arguments]))}") for c in commands
            if c.names or c.arguments]
    opts = [([_key(c.path)], f"echo {_quote(' '.join(f for o in c.options for f in o.flags))}") for c in commands]
    name = prog.replace("-", "_")
    valued_case = _case([(valued, "return 0")]) if valued else ""
    return f"""\
__{name}_next() {{
    case "$1|$2" in
{_case(nexts)}
    esac
}}

__{name}_valued() {{
    case "$1|$2" in
{valued_case}
    esac
    return 1
}}

__{name}_values() {{
    case "$1|$2" in
{_case(values)}
    esac
}}

__{name}_subcommands() {{
    case "$1" in
{_case(subs)}
    esac
}}

__{name}_options() {{
    case "$1" in
{_case(opts)}
    esac
}}

# The command the words before the cursor name ($cmdpath), and whether the word under the
# cursor is the value of a flag ($pending: that flag).
__{name}_locate() {{
    local word next skip=""
    cmdpath=""
    pending=""
    for word in "$@"; do
        if [[ -n "$skip" ]]; then
            skip=""
            continue
        fi
        if [[ "$word" == -* ]]; then
            if [[ "$word" != *=* ]] && __{name}_valued "$cmdpath" "$word"; then
                skip="$word"
            fi
            continue
        fi
        next="$(__{name}_next "$cmdpath" "$word")"
        if [[ -n "$next" ]]; then
            cmdpath="${{cmdpath:+$cmdpath }}$next"
        fi
    done
    pending="$skip"
}}
"""


def bash_script(parser: argparse.ArgumentParser) -> str:
    root = command_tree(parser)
    prog = parser.prog
    name = prog.replace("-", "_")
    return f"""\
# bash completion for {prog}; generated by `{prog} completion bash` from its commands.
# Load it with:  source <({prog} completion bash)
{_functions(root, prog)}
_{name}() {{
    local cur="${{COMP_WORDS[COMP_CWORD]}}" cmdpath pending values
    __{name}_locate "${{COMP_WORDS[@]:1:COMP_CWORD-1}}"
    if [[ -n "$pending" ]]; then
        values="$(__{name}_values "$cmdpath" "$pending")"
        if [[ "$values" == {FILES} ]]; then
            COMPREPLY=($(compgen -f -- "$cur"))
        else
            COMPREPLY=($(compgen -W "$values" -- "$cur"))
        fi
        return 0
    fi
    if [[ "$cur" == -* ]]; then
        COMPREPLY=($(compgen -W "$(__{name}_options "$cmdpath")" -- "$cur"))
    else
        COMPREPLY=($(compgen -W "$(__{name}_subcommands "$cmdpath")" -- "$cur"))
    fi
    return 0
}}

complete -o default -F _{name} {prog}
"""


def _describe_case(root: Command) -> str:
    """zsh's `name:description` lines for each command's subcommands and its flags."""
    entries = []
    for command in root.walk():
        lines = [f"{alias}:{command.subcommands[canonical].help}" for alias, canonical in sorted(command.names.items())]
        lines += list(command.arguments)
        entries.append(([_key(command.path, "subcommands")], f"print -r -- {_quote(chr(10).join(lines))}"))
        lines = [f"{flag}:{option.help}" for option in command.options for flag in option.flags]
        entries.append(([_key(command.path, "options")], f"print -r -- {_quote(chr(10).join(lines))}"))
    return _case(entries)


def zsh_script(parser: argparse.ArgumentParser) -> str:
    root = command_tree(parser)
    prog = parser.prog
    name = prog.replace("-", "_")
    return f"""\
#compdef {prog}
# zsh completion for {prog}; generated by `{prog} completion zsh` from its commands.
# Install it with:  {prog} completion zsh > "${{fpath[1]}}/_{prog}"   (then start a new shell)
# or for this shell only:  source <({prog} completion zsh)
{_functions(root, prog)}
__{name}_described() {{
    case "$1|$2" in
{_describe_case(root)}
    esac
}}

_{name}() {{
    local cmdpath pending values
    local -a entries
    __{name}_locate "${{(@)words[2,CURRENT-1]}}"
    if [[ -n "$pending" ]]; then
        values="$(__{name}_values "$cmdpath" "$pending")"
        if [[ "$values" == {FILES} ]]; then
            _files
        else
            compadd -- ${{=values}}
        fi
        return
    fi
    if [[ "$PREFIX" == -* ]]; then
        entries=("${{(@f)$(__{name}_described "$cmdpath" options)}}")
        _describe -t options 'option' entries
    else
        entries=("${{(@f)$(__{name}_described "$cmdpath" subcommands)}}")
        (( ${{#entries}} )) && [[ -n "${{entries[1]}}" ]] && _describe -t commands 'command' entries || _files
    fi
}}

if [[ "$funcstack[1]" == "_{name}" ]]; then
    _{name} "$@"
else
    compdef _{name} {prog}
fi
"""


def run(args: argparse.Namespace) -> int:
    parser = args.root_parser
    print(bash_script(parser) if args.shell == "bash" else zsh_script(parser), end="")
    return 0


def add_parser(commands: argparse._SubParsersAction, root: argparse.ArgumentParser) -> None:
    parser = commands.add_parser("completion", help="print a shell completion script (bash or zsh)",
                                 description="Print a completion script for bash or zsh, generated from mizzenctl's "
                                             "commands.")
    parser.add_argument("shell", choices=("bash", "zsh"))
    parser.set_defaults(run=run, root_parser=root)
