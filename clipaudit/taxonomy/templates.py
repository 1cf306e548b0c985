"""Prompt templates: one placeholder, ``{label}``, filled with Python's str.format rules."""
from __future__ import annotations

PLACEHOLDER = "label"


def template_problem(template: str) -> str | None:
    """Why ``template`` cannot be filled with a label, or None when it can.

    The only field is ``{label}``; literal braces are written ``{{`` and ``}}``
    (Python's str.format rules, which is how templates are filled).
    """
    import string

    try:
        fields = [(name, spec, conversion) for _, name, spec, conversion in string.Formatter().parse(template)
                  if name is not None]
    except ValueError as error:
        return f"unbalanced braces in template {template!r} ({error}); write literal braces as '{{{{' and '}}}}'"
    unknown = sorted({name for name, _, _ in fields if name != PLACEHOLDER})
    if unknown:
        shown = ", ".join("{" + name + "}" for name in unknown)
        return f"unknown placeholder {shown} in template {template!r}; the only placeholder is {{label}}"
    if any(spec or conversion for _, spec, conversion in fields):
        return f"template {template!r} formats {{label}}; write it plainly as {{label}}"
    if not fields:
        return f"template {template!r} has no {{label}}; every template must contain {{label}}"
    return None


def fill_template(template: str, label: str) -> str:
    """The prompt a template gives for a label (template already checked)."""
    return template.format(label=label)
