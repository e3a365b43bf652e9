"""Synthetic damage: the ground truth the benchmark and the learned detector rest on."""

from dataclasses import replace

import numpy as np

from app.restore.synthetic import BENCH_DAMAGE, DamageSpec, add_damage, widened
from tests.restore.conftest import off_line, smooth_photo


def test_tears_run_in_from_the_edge_as_bright_bands_and_are_labelled_lines():
    clean = smooth_photo(h=180, w=240, seed=2)
    only_tears = DamageSpec(scratches=(0, 0), creases=(0, 0), hairs=(0, 0), specks_per_mp=(0, 0), tears=(2, 2),
                            grain_sigma=0)
    dmg = add_damage(clean, np.random.default_rng(5), only_tears)
    torn = dmg.lines > 0  # the learned detector learns tears with the line damage
    border = np.zeros_like(torn)
    border[:2], border[-2:], border[:, :2], border[:, -2:] = True, True, True, True
    assert (torn & border).any()  # a rip starts at the print's edge
    assert 0.005 < torn.mean() < 0.2
    assert torn.sum() > 0.9 * (dmg.support > 0).sum()  # (a few dust specks are always drawn)
    grey = dmg.image.astype(np.float32).mean(axis=2)
    assert np.median(grey[torn & (dmg.visible > 0)]) > np.median(clean.astype(np.float32).mean(axis=2)) + 40  # bare paper


def test_tears_off_by_default_leave_the_damage_unchanged():
    clean = smooth_photo(seed=3)
    plain = add_damage(clean, np.random.default_rng(7))
    again = add_damage(clean, np.random.default_rng(7), DamageSpec(tears=(0, 0)))
    with_tears = add_damage(clean, np.random.default_rng(7), DamageSpec(tears=(1, 1)))
    assert np.array_equal(plain.image, again.image)
    assert (with_tears.support > 0).sum() > (plain.support > 0).sum()


def _bend(dmg) -> float:
    """How far (px) the scratch pixels stray from the straight line fitted through them."""
    return float(off_line(dmg.lines).max())


def test_straight_scratches_are_straight_lines():
    clean = smooth_photo(480, 640, seed=4)
    spec = DamageSpec(scratches=(1, 1), scratch_length=(0.9, 0.9), specks_per_mp=(0, 0), hairs=(0, 0),
                      creases=(0, 0), grain_sigma=0.0)
    straight = [_bend(add_damage(clean, np.random.default_rng(s), replace(spec, straight_share=1.0)))
                for s in range(8)]
    curved = [_bend(add_damage(clean, np.random.default_rng(s), spec)) for s in range(8)]
    assert max(straight) < 3.0
    assert max(curved) > 6.0  # the measure tells them apart (most curved ones bend gently)


def test_no_straight_share_leaves_the_benchmark_damage_unchanged():
    clean = smooth_photo(seed=3)
    bench = add_damage(clean, np.random.default_rng(7), BENCH_DAMAGE)
    again = add_damage(clean, np.random.default_rng(7), DamageSpec(tears=BENCH_DAMAGE.tears, straight_share=0.0))
    straight = add_damage(clean, np.random.default_rng(7), DamageSpec(tears=BENCH_DAMAGE.tears, straight_share=1.0))
    assert np.array_equal(bench.image, again.image)
    assert not np.array_equal(bench.image, straight.image)


def test_widened_damage_is_the_same_damage_drawn_wider():
    """synthetic.widened: scratches and specks `factor` times wider (a scan at that many times the
    resolution), nothing else changed; drawn with the same random stream it covers more."""
    spec = DamageSpec(creases=(0, 0), hairs=(0, 0), grain_sigma=0.0)
    wide = widened(spec, 2.5)
    assert wide.scratch_width == (2.5, 8.75) and wide.speck_radius == (1.75, 7.0)
    assert replace(wide, scratch_width=spec.scratch_width, speck_radius=spec.speck_radius) == spec
    clean = np.full((200, 300, 3), 120, np.uint8)
    thin = add_damage(clean, np.random.default_rng(5), spec)
    thick = add_damage(clean, np.random.default_rng(5), wide)
    assert (thick.support > 0).sum() > 1.8 * (thin.support > 0).sum()
