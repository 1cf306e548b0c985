"""The demo world: synthetic faces and a small CLIP-architecture model."""
