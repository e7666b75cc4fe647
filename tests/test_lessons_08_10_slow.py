"""make test-slow: lessons 08 and 10's trained claims, re-run on several seeds (not in CI).

Lesson 08: the CNN is ahead of the pixel-token ViT with 100 training images (in at least 4 of 5 seeds), near
the ~98% ceiling with all of them, the ViT levelling off below it (1000 steps lift it: 3 seeds); with shuffled pixels and 100
images the CNN is still far ahead (twin ViT: in 4 of 5 seeds; fresh ViT starts: on average); the shuffle costs the CNN a few
points (every seed), more than the ViT (mean over 100 and 300 images; relabelled
twin: on every seed; fresh ViT starts: on average over the seeds). Lesson 10: attention masked by the karate club's graph beats
unmasked attention on every seed and by > 0.25 on average; GAT's additive score does as well.
"""

import numpy as np
import pytest
import torch

from course_utils import graphs, vision
from course_utils.tasks import digits
from course_utils.training import TrainConfig, accuracy, train_classifier

pytestmark = pytest.mark.slow

SEEDS = [0, 1, 2, 3, 4]
SIZES = [100, 200, 400, 800, 1297]
CONTROL_SIZES = [100, 300]
CNN_TRAIN = TrainConfig(steps=300, batch_size=64, lr=1e-2, progress=False)  # as in the lesson
VIT_TRAIN = TrainConfig(steps=300, batch_size=64, lr=3e-3, progress=False)


def _fit(model, x, y, config, seed, x_test, y_test):
    train_classifier(model, (x, y), TrainConfig(**{**config.__dict__, "seed": seed}))
    return accuracy(model, x_test, y_test)


def _lesson08(seed: int) -> dict:
    data = digits.load(n_test=500, seed=0)
    perm = digits.fixed_permutation(64, seed=seed)
    shuffled_test = digits.permute_pixels(data.x_test, perm)
    out = {"CNN": {}, "ViT": {}}
    for n in sorted(set(SIZES) | set(CONTROL_SIZES)):
        x, y = digits.balanced_subset(data.x_train, data.y_train, n, seed=seed)
        torch.manual_seed(seed)
        out["CNN"][n] = _fit(vision.TinyCNN(), x, y, CNN_TRAIN, seed, data.x_test, data.y_test)
        torch.manual_seed(seed)
        out["ViT"][n] = _fit(vision.TinyViT(), x, y, VIT_TRAIN, seed, data.x_test, data.y_test)
    for key in ("CNN shuffled", "ViT shuffled (twin)", "ViT shuffled (fresh)"):
        out[key] = {}
    for n in CONTROL_SIZES:
        x, y = digits.balanced_subset(data.x_train, data.y_train, n, seed=seed)
        xs = digits.permute_pixels(x, perm)
        torch.manual_seed(seed)
        out["CNN shuffled"][n] = _fit(vision.TinyCNN(), xs, y, CNN_TRAIN, seed, shuffled_test, data.y_test)
        torch.manual_seed(seed)
        twin = vision.TinyViT().with_permuted_positions(perm)
        out["ViT shuffled (twin)"][n] = _fit(twin, xs, y, VIT_TRAIN, seed, shuffled_test, data.y_test)
        torch.manual_seed(seed + 100)  # a fresh start, unrelated to the unshuffled run's
        out["ViT shuffled (fresh)"][n] = _fit(vision.TinyViT(), xs, y, VIT_TRAIN, seed, shuffled_test, data.y_test)
    return out


@pytest.fixture(scope="module")
def lesson08_runs():
    torch.set_num_threads(1)
    runs = {seed: _lesson08(seed) for seed in SEEDS}
    for seed, r in runs.items():  # shown with -s
        print(f"seed {seed}: " + "  ".join(f"{k} {v}" for k, v in r.items()))
    return runs


def test_lesson08_cnn_ahead_with_little_data(lesson08_runs):
    ahead = [r["CNN"][SIZES[0]] > r["ViT"][SIZES[0]] + 0.15 for r in lesson08_runs.values()]
    assert sum(ahead) >= 4, ahead


def test_lesson08_ceiling_and_growth(lesson08_runs):
    for r in lesson08_runs.values():
        assert r["CNN"][SIZES[-1]] > 0.95
        assert r["ViT"][SIZES[-1]] > r["ViT"][SIZES[0]] + 0.03
        assert 0.7 < r["ViT"][SIZES[-1]] < min(0.93, r["CNN"][SIZES[-1]] - 0.05)  # levels off below the CNN


def test_lesson08_shuffle_costs_the_cnn_more(lesson08_runs):
    cnn_drops, fresh_drops = [], []
    for r in lesson08_runs.values():
        cnn_drop = np.mean([r["CNN"][n] - r["CNN shuffled"][n] for n in CONTROL_SIZES])
        twin_drops = [r["ViT"][n] - r["ViT shuffled (twin)"][n] for n in CONTROL_SIZES]
        assert cnn_drop > np.mean(twin_drops) + 0.01  # the lesson's assertions, on every seed
        assert all(abs(d) < 0.03 for d in twin_drops)  # float32 rounding lets the twin drift a little
        assert 0.01 < cnn_drop < 0.10  # the lesson's "a few points", on every seed
        cnn_drops.append(cnn_drop)
        fresh_drops.append(np.mean([r["ViT"][n] - r["ViT shuffled (fresh)"][n] for n in CONTROL_SIZES]))
    print("mean drops over seeds: CNN", np.mean(cnn_drops), " ViT (fresh start)", np.mean(fresh_drops))
    assert np.mean(cnn_drops) > np.mean(fresh_drops) + 0.01  # in expectation, a fresh ViT loses less


def test_lesson08_shuffled_cnn_still_ahead(lesson08_runs):
    n = CONTROL_SIZES[0]
    ahead = [r["CNN shuffled"][n] > r["ViT shuffled (twin)"][n] + 0.15 for r in lesson08_runs.values()]
    assert sum(ahead) >= 4, ahead  # the lesson's assertion: locality is only part of the CNN's lead
    fresh_margin = [r["CNN shuffled"][n] - r["ViT shuffled (fresh)"][n] for r in lesson08_runs.values()]
    print("shuffled CNN - fresh shuffled ViT at", n, "images:", np.round(fresh_margin, 3))
    assert np.mean(fresh_margin) > 0.15


def test_lesson08_vit_is_limited_by_its_steps():
    # The lesson: with every image the ViT, "limited here by 300 steps", levels off near 0.8; more steps lift it.
    torch.set_num_threads(1)
    data = digits.load(n_test=500, seed=0)
    gains = []
    for seed in SEEDS[:3]:
        x, y = digits.balanced_subset(data.x_train, data.y_train, len(data.y_train), seed=seed)
        accs = []
        for steps in (VIT_TRAIN.steps, 1000):
            torch.manual_seed(seed)
            config = TrainConfig(**{**VIT_TRAIN.__dict__, "steps": steps})
            accs.append(_fit(vision.TinyViT(), x, y, config, seed, data.x_test, data.y_test))
        print(f"seed {seed}: ViT on every image, {VIT_TRAIN.steps} vs 1000 steps: {accs}")
        gains.append(accs[1] - accs[0])
    assert np.mean(gains) > 0.05 and min(gains) > 0


GRAPH_SEEDS = list(range(8))


@pytest.fixture(scope="module")
def lesson10_runs():
    torch.set_num_threads(1)
    runs = {}
    for seed in GRAPH_SEEDS:
        club = graphs.karate_club(labelled_per_class=2, seed=seed)  # a different labelled set per seed too
        accs = {}
        for name, adjacency, score in (
            ("masked", club.adjacency, "dot"),
            ("unmasked", None, "dot"),
            ("gat", club.adjacency, "additive"),
        ):
            torch.manual_seed(seed)
            model = graphs.GraphAttentionClassifier(34, 2, adjacency, graphs.GraphModelConfig(score=score))
            graphs.train_node_classifier(model, club, steps=200, lr=3e-3, seed=seed)
            accs[name] = graphs.node_accuracy(model, club)
        runs[seed] = accs
        print(f"seed {seed}: {accs}")
    return runs


def test_lesson10_mask_beats_no_mask(lesson10_runs):
    masked = np.array([r["masked"] for r in lesson10_runs.values()])
    unmasked = np.array([r["unmasked"] for r in lesson10_runs.values()])
    gat = np.array([r["gat"] for r in lesson10_runs.values()])
    assert (masked > unmasked).all()
    assert masked.mean() > unmasked.mean() + 0.25
    assert gat.mean() > unmasked.mean() + 0.2
    assert unmasked.mean() < 0.65  # chance is 0.5: nothing in the unmasked input mentions the graph
    assert masked.mean() > 0.85 and abs(masked.mean() - gat.mean()) < 0.1
