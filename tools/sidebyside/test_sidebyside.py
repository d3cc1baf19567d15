#!/usr/bin/env python3
"""Tests of tools/sidebyside's own logic (seconds, no model, no paper checkout):

    .venv/bin/python tools/sidebyside/test_sidebyside.py

- the per-image evaluation (predicted_classes) against hand-computed classes, incl. the cumulative `max` rule and
  absent classes scoring 0; confusion matrices, the paper's mIoU, goca-bench journal entries; near-tie gaps;
- the noise injection: diffusers' VAE posterior sample and the img2img noise drawn through the shim equal
  goca-bench's per-image noise (tools/parity/parity_full.noises, checked against goca-bench by make parity-full);
- with GB_PAPER_SRC and GB_GDF_SRC pointing at checkouts of Darkbblue/goca and Darkbblue/generic-diffusion-feature:
  prepare() applies every text shim exactly once and the prepared copy imports (skipped otherwise, saying so).
"""
import os
import sys
import tempfile
import unittest

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "tools", "parity"))
import paper_side  # noqa: E402
import report as R  # noqa: E402


class Evaluation(unittest.TestCase):
    def test_offset_rule_absent_classes_and_ties(self):
        # one object (class 5) + the support map, at the label's size (the bilinear resize is then the identity)
        obj = torch.tensor([[0.9, 0.2], [0.5, 0.0]])
        sup = torch.tensor([[0.1, 0.1], [0.5, 0.3]])
        pred = torch.stack([obj, sup])
        cls = R.predicted_classes(pred, (2, 2), [5], 21, "offset", [-0.4, 0.0, 0.4])
        self.assertEqual(cls.shape, (3, 2, 2))
        # threshold -0.4: background = sup - 0.4 < 0 everywhere; obj 0 at (1,1) ties with the absent classes'
        # zeros: argmax takes the lowest id among them, class 1 (an absent class), as the paper's torch argmax does
        np.testing.assert_array_equal(cls[0], [[5, 5], [5, 1]])
        np.testing.assert_array_equal(cls[1], [[5, 5], [0, 0]])  # tie 0.5 = 0.5 at (1,0): lowest id, 0
        np.testing.assert_array_equal(cls[2], [[5, 0], [0, 0]])

    def test_max_rule_is_cumulative(self):
        obj = torch.tensor([[0.35, 0.6]])
        sup = torch.tensor([[0.0, 0.0]])
        cls = R.predicted_classes(torch.stack([obj, sup]), (1, 2), [3], 4, "max", [0.5, 0.3])
        # the second threshold (0.3) still sees the support clamped at 0.5 by the first
        np.testing.assert_array_equal(cls[0], [[0, 3]])
        np.testing.assert_array_equal(cls[1], [[0, 3]])

    def test_resize_matches_the_paper_call(self):
        g = torch.Generator().manual_seed(1)
        pred = torch.rand(3, 8, 8, generator=g)
        cls = R.predicted_classes(pred, (13, 11), [2, 7], 9, "offset", [0.0])
        up = torch.nn.functional.interpolate(pred.unsqueeze(0), (13, 11), mode="bilinear").squeeze(0)
        full = torch.zeros(9, 13, 11)
        full[2], full[7], full[0] = up[0], up[1], up[2]
        np.testing.assert_array_equal(cls[0], full.argmax(0).numpy())

    def test_confusion_miou_and_journal(self):
        label = np.array([[0, 1, 1], [2, 255, 1]])
        pred = np.array([[0, 1, 2], [2, 1, 0]])
        m = R.confusion(pred, label, 3)
        self.assertEqual(m.shape, (4, 3))
        self.assertEqual(m[3, 1], 1)  # the 255 pixel predicted 1: the extra row
        self.assertEqual(int(m.sum()), 6)
        # paper: I = [1, 1, 1]; U_0 = |pred 0 ∪ gt 0| = 2, U_1 = 4 (gt 1 at 3 pixels, pred 1 at 2, one shared), U_2 = 2
        self.assertAlmostEqual(R.paper_miou(m), (1 / 2 + 1 / 4 + 1 / 2) / 3, places=7)
        trip = [[g, p, int(m[g, p])] for g in range(4) for p in range(3) if m[g, p]]
        np.testing.assert_array_equal(R.journal_matrix(trip, 3), m)

    def test_near_tie_gap_and_map_diff(self):
        pf = torch.tensor([[[0.5, 0.1]], [[0.5 + 1e-6, 0.9]]])
        gf = torch.tensor([[[0.5 + 1e-6, 0.1]], [[0.5, 0.9]]])
        n, gap = R.near_tie_gap(pf, gf, pf.argmax(0).numpy(), gf.argmax(0).numpy())
        self.assertEqual(n, 1)
        self.assertLess(gap, 2e-6)
        d, same = R.max_abs_diff(np.array([1.0, np.nan]), np.array([1.5, np.nan]))
        self.assertEqual((d, same), (0.5, True))
        self.assertFalse(R.max_abs_diff(np.array([1.0, np.nan]), np.array([1.0, 2.0]))[1])


class NoiseInjection(unittest.TestCase):
    def test_diffusers_draws_goca_bench_noise(self):
        import parity_full
        import diffusers.models.autoencoders.vae as vae_mod
        import diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion_img2img as img2img
        self.assertTrue(hasattr(img2img, "randn_tensor") and hasattr(vae_mod, "randn_tensor"),
                        "diffusers moved randn_tensor: the shim would not reach the pipeline")
        eps_vae, eps = parity_full.noises("synth_000007", 4, 4, 8)
        noise = paper_side._Noise(parity_full.SEED)
        saved = vae_mod.randn_tensor
        vae_mod.randn_tensor = noise.randn_tensor
        try:
            noise.start("synth_000007")
            params = torch.randn(1, 8, 8, 8, generator=torch.Generator().manual_seed(3))
            dist = vae_mod.DiagonalGaussianDistribution(params)
            sample = dist.sample()
            second = noise.randn_tensor((1, 4, 8, 8), device=torch.device("cpu"), dtype=torch.float32)
        finally:
            vae_mod.randn_tensor = saved
        torch.testing.assert_close(sample, dist.mean + dist.std * eps_vae, rtol=0, atol=0)
        torch.testing.assert_close(second, eps, rtol=0, atol=0)
        self.assertEqual(noise.draws, 2)
        half = paper_side._Noise(parity_full.SEED)
        half.start("synth_000007")
        torch.testing.assert_close(half.randn_tensor((1, 4, 8, 8), dtype=torch.float16), eps_vae.half())


class Prepare(unittest.TestCase):
    def test_prepare_applies_every_shim(self):
        paper, gdf = os.environ.get("GB_PAPER_SRC"), os.environ.get("GB_GDF_SRC")
        if not paper or not gdf:
            self.skipTest("GB_PAPER_SRC / GB_GDF_SRC not set (checkouts of Darkbblue/goca and "
                          "Darkbblue/generic-diffusion-feature)")
        err = paper_side.check_sources(paper, gdf)
        self.assertIsNone(err, err)
        with tempfile.TemporaryDirectory() as env:
            paper_side.prepare(paper, gdf, env)
            for rel, _, new in paper_side.TEXT_EDITS:
                self.assertIn(new, open(os.path.join(env, rel)).read())
            paper_side.write_dataset_config(env, "voc", "/data/VOC2012", "/data/voc.json", 7)
            cfg = open(os.path.join(env, "src-main", "configs", "current_dataset.py")).read()
            self.assertIn("self.limit=7", cfg)
            self.assertIn("'/data/VOC2012'", cfg)
            save = paper_side.write_model_config(env, "sd15", "goca")
            self.assertTrue(save.endswith(os.path.join("run_output", "15")))
            self.assertTrue(os.path.isfile(os.path.join(env, "site", "diffusers", "models", "attention_processor.py")))
            self.assertIn("feature_gatherer", open(os.path.join(env, "site", "diffusers", "models",
                                                                "attention_processor.py")).read())


if __name__ == "__main__":
    unittest.main(verbosity=2)
