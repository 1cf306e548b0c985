"""`clipaudit list`: what ships with clipaudit, one line each (the taxonomies and the sweep presets)."""
from __future__ import annotations

MAX_DESCRIPTION = 72  # one terminal line per entry; `clipaudit validate NAME` shows the rest


def shipped_lines() -> list[str]:
    from clipaudit.sweep.spec import generated_variant_documents, load_sweep_spec, shipped_sweep_specs
    from clipaudit.taxonomy import load_taxonomy, shipped_taxonomies

    taxonomies = {name: load_taxonomy(path) for name, path in shipped_taxonomies().items()}
    specs = {name: load_sweep_spec(path) for name, path in sorted(shipped_sweep_specs().items())}
    width = max(map(len, [*taxonomies, *specs]), default=0)
    lines = ["taxonomies (--taxonomy NAME; clipaudit validate NAME shows one in full):"]
    for name, taxonomy in taxonomies.items():
        probes = ", ".join(probe.id for probe in taxonomy.probes)
        count = len(taxonomy.variants)
        variants = f"; {count} variant{'s' if count != 1 else ''}" if count else ""
        lines.append(f"  {name.ljust(width)}  {_first_sentence(taxonomy.description)} "
                     f"[probes: {probes}{variants}]")
    lines.append("sweep presets (clipaudit sweep --spec NAME):")
    for name, spec in specs.items():
        lines.append(f"  {name.ljust(width)}  {_first_sentence(spec.description)} "
                     f"[{len(generated_variant_documents(spec))} generated variants]")
    return lines


def _first_sentence(text: str) -> str:
    words = " ".join(str(text or "").split())
    sentence = words.split(". ")[0].rstrip(".")
    return sentence if len(sentence) <= MAX_DESCRIPTION else sentence[: MAX_DESCRIPTION - 1].rstrip() + "\u2026"
