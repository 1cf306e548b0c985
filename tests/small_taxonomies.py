"""Small taxonomies several test modules audit with (text, written to a file by each test)."""

# Two probes, an attribute probe with one slice and a harm probe with two.
TWO_PROBES = """\
name: two-probes
templates: ["a photo of a {label}."]
probes:
  - id: gender
    kind: attribute
    target: gender
    classes:
      - {id: Male, label: man}
      - {id: Female, label: woman}
    slices: [race]
  - id: denigration
    kind: harm
    classes:
      - {id: thief, category: crime}
      - {id: gorilla, category: non_human}
      - {id: person}
    slices: [race, gender]
"""
