"""Synthetic damage: the ground truth the benchmark and the learned detector rest on."""

import numpy as np

from app.restore.synthetic import DamageSpec, add_damage
from tests.restore.conftest import smooth_photo


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
