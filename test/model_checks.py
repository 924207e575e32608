"""Checks that several model test files make of a trained model (plain functions, not tests)."""

import json

import torch


def assert_scores_do_not_depend_on_the_batch(model, images):
    with torch.no_grad():
        together = model.predict(images).scores
        alone = torch.cat([model.predict(images[i:i + 1]).scores for i in range(len(images))])
    assert torch.allclose(together, alone, atol=1e-5)


def assert_checkpoint_round_trip(model, model_class, images, tmp_path):
    """Weights through safetensors and hparams through JSON rebuild an identical scorer."""
    from safetensors.torch import load_file, save_file

    description = json.loads(json.dumps(model.describe()))
    path = tmp_path / f"{model.name}.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    rebuilt = model_class(description["channels"], description["size"], **description["hparams"])
    rebuilt.load_state_dict(load_file(str(path)), strict=True)
    rebuilt.eval()
    assert rebuilt.hparams == model.hparams
    with torch.no_grad():
        assert torch.equal(rebuilt.predict(images).scores, model.predict(images).scores)


def assert_centre_square_found(model, normal, anomalous, score_ratio: float):
    """Every anomalous image scores above score_ratio x the worst normal one, and its map is
    hotter in the centre (where with_square pastes the square) than in a corner."""
    with torch.no_grad():
        normal_scores = model.predict(normal).scores
        prediction = model.predict(anomalous)
    assert prediction.scores.min() > score_ratio * normal_scores.max()
    c = model.size // 2
    inside = prediction.anomaly_maps[:, c - 3:c + 3, c - 3:c + 3].mean(dim=(1, 2))
    assert (inside > 3 * prediction.anomaly_maps[:, :8, :8].mean(dim=(1, 2))).all()


def assert_predicts_one_score_and_map_per_image(model, batch):
    """Eval-mode prediction: finite scores (B), maps (B x S x S), reconstructions like the batch,
    and hparams a checkpoint can store as JSON."""
    model.eval()
    with torch.no_grad():
        prediction = model.predict(batch)
    count, size = batch.shape[0], batch.shape[-1]
    assert prediction.scores.shape == (count,)
    assert prediction.anomaly_maps.shape == (count, size, size)
    assert prediction.reconstructions.shape == batch.shape
    assert torch.isfinite(prediction.scores).all()
    json.dumps(model.describe())


def assert_training_updates_both_networks(model, batch):
    """Two training steps log finite loss_d / loss_g and move generator and discriminator."""
    import math

    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizers = model.configure_optimizers()
    model.train()
    for _ in range(2):
        logs = model.training_step(batch, optimizers)
    assert set(logs) == {"loss_d", "loss_g"}
    assert all(isinstance(v, float) and math.isfinite(v) for v in logs.values())
    after = model.state_dict()
    for prefix in ("generator.", "discriminator."):
        assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith(prefix))
