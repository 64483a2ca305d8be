"""Chat-template sandbox-escape evasions (red team, wave 2). Each template reaches `os.system` from
`cycler` with every dunder name routed through a data flow the first analysis did not follow.
`MARK` is replaced by the marker path; rendering with plain jinja2 runs `touch MARK`."""

_OS = "['os'].system('touch MARK')"

CASES: dict[str, str] = {
    "attr_star_args": "{{ (cycler|attr(*['__init__'])|attr(*['__globals__']))" + _OS + " }}",
    "map_spread_kwargs": "{{ ([cycler]|map(**{'attribute': '__init__.__globals__'})|first)" + _OS + " }}",
    "groupby_star_args": "{% for g in [cycler]|groupby(*['__init__.__globals__']) %}{{ g.grouper" + _OS
                         + " }}{% endfor %}",
    "set_block": "{% set a %}__init__{% endset %}{% set b %}__globals__{% endset %}{{ cycler[a][b]" + _OS + " }}",
    "with_statement": "{% with a = '__init__', b = '__globals__' %}{{ cycler[a][b]" + _OS + " }}{% endwith %}",
    "macro_defaults": "{% macro m(o, a='__init__', b='__globals__') %}{{ o[a][b]" + _OS
                      + " }}{% endmacro %}{{ m(cycler) }}",
    "macro_call_args": "{% macro m(o, a, b) %}{{ o[a][b]" + _OS + " }}{% endmacro %}"
                       "{{ m(cycler, '__init__', '__globals__') }}",
    "namespace_attribute": "{% set ns = namespace() %}{% set ns.a = '__init__' %}{% set ns.b = '__globals__' %}"
                           "{{ cycler[ns.a][ns.b]" + _OS + " }}",
    "call_block_caller": "{% macro m() %}{{ caller('__init__', '__globals__') }}{% endmacro %}"
                         "{% call(a, b) m() %}{{ cycler[a][b]" + _OS + " }}{% endcall %}",
    "macro_varargs": "{% macro m() %}{{ cycler[varargs[0]][varargs[1]]" + _OS + " }}{% endmacro %}"
                     "{{ m('__init__', '__globals__') }}",
    "macro_kwargs": "{% macro m() %}{{ cycler[kwargs.a][kwargs.b]" + _OS + " }}{% endmacro %}"
                    "{{ m(a='__init__', b='__globals__') }}",
    "string_slices": "{% set s = 'x__init__x__globals__' %}{{ cycler[s[1:9]][s[10:]]" + _OS + " }}",
}

# Attribute paths given positionally: no code execution on their own (the filters only sort or
# compare by the attribute) but a dunder read all the same.
POSITIONAL_ONLY = {
    "sort_positional_attribute": "{{ [cycler]|sort(false, false, '__init__.__globals__') }}",
    "unique_positional_attribute": "{{ [cycler]|unique(false, '__init__.__globals__')|list }}",
}
