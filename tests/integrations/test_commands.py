"""The shared chat command parser: `<keyword> [ref=<ref>] [KEY=value …]`, with the run
endpoint's own rules."""

import pytest

from integrations.commands import CommandError, parse_command


@pytest.mark.parametrize(
    ("text", "keyword", "ref", "params"),
    [
        ("deploy", "deploy", None, {}),
        ("<@U0BOT> deploy", "deploy", None, {}),
        ("<@U0BOT|deplite>   Deploy  ref=feature/x ENV=prod", "deploy", "feature/x", {"ENV": "prod"}),
        ("deploy ENV=prod ref=v1.2.3 VERSION=1.2", "deploy", "v1.2.3", {"ENV": "prod", "VERSION": "1.2"}),
        ('deploy MSG="hello world" EMPTY=', "deploy", None, {"MSG": "hello world", "EMPTY": ""}),
        ("deploy URL=<https://example.com/x|example.com/x>", "deploy", None, {"URL": "https://example.com/x"}),
        ("deploy A=1&amp;2 B=&lt;x&gt;", "deploy", None, {"A": "1&2", "B": "<x>"}),
        ("deploy \u201cMSG=smart quotes\u201d", "deploy", None, {"MSG": "smart quotes"}),
        ("deploy ref=", "deploy", None, {}),
    ],
)
def test_commands_parse(text, keyword, ref, params):
    parsed = parse_command(text)
    assert (parsed.keyword, parsed.ref, parsed.params) == (keyword, ref, params)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "Name a keyword"),
        ("<@U0BOT>", "Name a keyword"),
        ("ENV=prod", "Start with the trigger's keyword"),
        ("dep/loy", "is not a keyword"),
        ("deploy prod", "`prod` is not KEY=value"),
        ("deploy =x", "`=x` is not KEY=value"),
        ("deploy ref=a ref=b", "ref is given twice"),
        ("deploy ref=-x", "A ref cannot start with '-'"),
        ("deploy 9LIVES=1", "params.9LIVES"),
        ("deploy X=" + "a" * 4097, "at most 4096 characters"),
        ('deploy "X=1', "Unbalanced quotes"),
    ],
)
def test_bad_commands_say_how_to_fix_them(text, message):
    with pytest.raises(CommandError) as exc:
        parse_command(text)
    assert message in exc.value.message
