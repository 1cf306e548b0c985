"""Build a tiny CLIP-architecture checkpoint offline.

Real checkpoints cannot be downloaded on every machine (CI and tests run offline), so tests and
the demo build a small `transformers.CLIPModel` from a config, with a byte-level BPE tokenizer
learnt locally (CLIP's own normalisation and pre-tokenisation, run by `tokenizers`; the same
tokenizer for the same corpus in every process), and save it with `save_pretrained`. It is then loaded back through exactly the code path a real
checkpoint takes (`AutoModel` / `AutoProcessor`).

`build_tiny_clip` gives random (seeded) weights, for tests: numbers from such a model say
nothing about any model. The demo model is built by the same code (`new_tiny_clip`) and then
trained on synthetic faces by :mod:`clipaudit.demo.train`.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

# Words the shipped taxonomies, templates and demo captions use; the tokenizer learns merges
# for them, and anything else still tokenises (byte-level BPE has no unknown characters).
BASE_CORPUS = (
    "a an the photo of person people man woman men women boy girl child baby teenager adult "
    "elderly old young years aged to and or more than cropped close-up picture face portrait "
    "east asian indian black white middle eastern latino hispanic southeast "
    "animal gorilla chimpanzee orangutan thief criminal suspicious offender convict "
    "0 1 2 3 4 5 6 7 8 9 10 19 20 29 30 39 40 49 50 59 60 69 70"
)

START_TOKEN = "<|startoftext|>"
END_TOKEN = "<|endoftext|>"
END_OF_WORD = "</w>"


@dataclass(frozen=True)
class TinyClipConfig:
    """Sizes of the tiny model; small enough to train and run on two CPU cores."""

    hidden_size: int = 64
    intermediate_size: int = 128
    num_layers: int = 2
    num_heads: int = 4
    projection_dim: int = 32
    image_size: int = 64
    patch_size: int = 16
    max_text_tokens: int = 32
    vocab_size: int = 512
    text_layers: int | None = None  # None: as many as the image tower (num_layers)


def train_tokenizer(corpus: Iterable[str], *, vocab_size: int):
    """Train a CLIP-style byte-level BPE tokenizer and wrap it as transformers' CLIPTokenizer.

    Words are split exactly as CLIP splits them (the normaliser and pre-tokeniser below, run by
    ``tokenizers``); the merges are learnt here rather than by ``tokenizers``' trainer, which numbers
    the characters it sees at a word's end in a hash set's order and breaks ties between equally
    frequent pairs by those numbers: the same corpus and seed gave another tokenizer, hence another
    model, in every process. Here ties go to the pair that sorts first, and ids follow a fixed order.
    """
    from tokenizers import Regex, Tokenizer, normalizers, pre_tokenizers
    from tokenizers.models import BPE
    from transformers import CLIPTokenizer

    splitter = Tokenizer(BPE(unk_token=END_TOKEN, end_of_word_suffix="</w>", continuing_subword_prefix=""))
    # The same normaliser and pre-tokeniser as transformers' CLIPTokenizer, so the merges we
    # learn are the ones it applies.
    splitter.normalizer = normalizers.Sequence(
        [normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()]
    )
    splitter.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(
                Regex(r"""'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""),
                behavior="removed",
                invert=True,
            ),
            pre_tokenizers.ByteLevel(add_prefix_space=False),
        ]
    )
    word_counts: Counter[tuple[str, ...]] = Counter()
    for text in corpus:
        for word, _ in splitter.pre_tokenizer.pre_tokenize_str(splitter.normalizer.normalize_str(text)):
            word_counts[(*word[:-1], word[-1] + END_OF_WORD)] += 1
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    word_ends = sorted({symbols[-1] for symbols in word_counts})
    base = [START_TOKEN, END_TOKEN, *alphabet, *word_ends]
    merges = learn_merges(word_counts, wanted=max(0, vocab_size - len(base)))
    vocab = {token: index for index, token in enumerate(dict.fromkeys([*base, *(a + b for a, b in merges)]))}
    # Every byte also needs an end-of-word form ('.</w>', 'é</w>'): without it a word ending in
    # a rare byte maps to the unknown token, which CLIP shares with its end token.
    for byte_symbol in alphabet:
        vocab.setdefault(byte_symbol + END_OF_WORD, len(vocab))
    return CLIPTokenizer(vocab=vocab, merges=merges)


def learn_merges(word_counts: Mapping[tuple[str, ...], int], *, wanted: int) -> list[tuple[str, str]]:
    """Byte-pair encoding's merges (Sennrich et al. 2016): up to ``wanted`` times, merge the most
    frequent adjacent pair of symbols over all words (weighted by their counts); among equally
    frequent pairs, the one that sorts first."""
    words = dict(word_counts)
    merges: list[tuple[str, str]] = []
    while len(merges) < wanted:
        pair_counts: Counter[tuple[str, str]] = Counter()
        for symbols, count in words.items():
            for pair in zip(symbols, symbols[1:]):
                pair_counts[pair] += count
        if not pair_counts:
            break
        best = min(pair_counts, key=lambda pair: (-pair_counts[pair], pair))
        merges.append(best)
        words = {_merged(symbols, best): count for symbols, count in words.items()}
    return merges


def _merged(symbols: tuple[str, ...], pair: tuple[str, str]) -> tuple[str, ...]:
    out: list[str] = []
    index = 0
    while index < len(symbols):
        if index + 1 < len(symbols) and (symbols[index], symbols[index + 1]) == pair:
            out.append(symbols[index] + symbols[index + 1])
            index += 2
        else:
            out.append(symbols[index])
            index += 1
    return tuple(out)


def build_tiny_clip(
    out_dir: Path,
    *,
    seed: int = 0,
    config: TinyClipConfig = TinyClipConfig(),
    extra_corpus: Iterable[str] = (),
) -> Path:
    """Write a randomly initialised tiny CLIP checkpoint (model + processor) to `out_dir`.

    Deterministic for a seed. The folder is written next to its destination and renamed into
    place, so a concurrent reader never sees half a checkpoint.
    """
    model, processor = new_tiny_clip(seed=seed, config=config, corpus=[BASE_CORPUS, *extra_corpus])
    return save_checkpoint(model, processor, out_dir)


def new_tiny_clip(*, seed: int, config: TinyClipConfig, corpus: Iterable[str]):
    """A freshly initialised `(CLIPModel, CLIPProcessor)` pair, deterministic for a seed and corpus."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    tokenizer = train_tokenizer(corpus, vocab_size=config.vocab_size)
    tokenizer.model_max_length = config.max_text_tokens
    model_config = CLIPConfig(
        text_config=dict(
            vocab_size=len(tokenizer),
            hidden_size=config.hidden_size,
            intermediate_size=config.intermediate_size,
            num_hidden_layers=config.text_layers or config.num_layers,
            num_attention_heads=config.num_heads,
            max_position_embeddings=config.max_text_tokens,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        ),
        vision_config=dict(
            hidden_size=config.hidden_size,
            intermediate_size=config.intermediate_size,
            num_hidden_layers=config.num_layers,
            num_attention_heads=config.num_heads,
            image_size=config.image_size,
            patch_size=config.patch_size,
        ),
        projection_dim=config.projection_dim,
    )
    torch.manual_seed(seed)
    model = CLIPModel(model_config).eval()
    image_processor = CLIPImageProcessor(
        size={"shortest_edge": config.image_size},
        crop_size={"height": config.image_size, "width": config.image_size},
    )
    return model, CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer)


def save_checkpoint(model, processor, out_dir: Path, *, extra_files: dict[str, str] | None = None,
                    dtype=None) -> Path:
    """`save_pretrained` model and processor (plus `extra_files`, name -> text) into `out_dir` atomically.

    ``dtype`` (e.g. ``torch.float16``) stores the weights in that precision; loading casts them
    back to the precision the caller asks for.
    """
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".tiny-clip-", dir=out_dir.parent))
    try:
        to_save = model if dtype is None else _copy_in_dtype(model, dtype)
        to_save.save_pretrained(staging)
        processor.save_pretrained(staging)
        for name, text in (extra_files or {}).items():
            (staging / name).write_text(text, encoding="utf-8")
        # mkdtemp (and safetensors) create owner-only modes; a checkpoint is for everyone to read.
        os.chmod(staging, 0o755)
        for path in staging.iterdir():
            os.chmod(path, 0o644)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(staging, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out_dir


def _copy_in_dtype(model, dtype):
    import copy

    return copy.deepcopy(model).to(dtype)


