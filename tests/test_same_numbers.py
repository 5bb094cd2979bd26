"""One checkpoint, one accuracy: training's per-epoch test, the export's float evaluation and the
profile score a rate-coded model on the same spikes (the run's seed, `TEST_BATCH_SIZE`)."""

import pytest

from snnpipe.pipeline.config import TrainConfig
from snnpipe.pipeline.export import export
from snnpipe.pipeline.profile import profile
from snnpipe.pipeline.train import train


@pytest.mark.parametrize("seed", [0, 3])
def test_train_export_and_profile_report_the_same_accuracy(tmp_path, seed):
    ckpt = train(TrainConfig(model_args={"hidden": (32,)}, epochs=2, encoding="rate", timesteps=4, seed=seed,
                             out=str(tmp_path / "run")), progress=False)
    recorded = ckpt.history[-1]["test_acc"]
    exported = export(ckpt, "loihi", out=tmp_path / "m.net.h5", max_drop=100.0)
    assert exported.report["accuracy_float"] == pytest.approx(recorded, abs=1e-6)  # the report rounds to 6 digits
    assert profile(ckpt.path).accuracy == recorded
