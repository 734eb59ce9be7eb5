"""One rank of a two-process DDP training run on CPU (gloo), started by test_training through torchrun.

Writes the sum of its model's parameters to RUN_DIR/rank<N>.json so the test can check that the ranks agree.
``--stop-rank0-early`` gives rank 0 alone a time limit of zero: the ranks' clocks disagree about max_minutes,
as they can in a real run, and both must still stop at the same step.
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # Testing/, for bundle_fixtures' blob_images

import torch  # noqa: E402

from bundle_fixtures import blob_images  # noqa: E402
from DAECounterfactualLib.model.config import DAEConfig  # noqa: E402
from DAECounterfactualResearch.training import Trainer, TrainConfig  # noqa: E402

run_dir, stop_rank0_early = Path(sys.argv[1]), "--stop-rank0-early" in sys.argv
torch.set_num_threads(1)
config = DAEConfig(image_size=16, in_channels=1, base_channels=16, channel_mults=(1, 2), encoder_channel_mults=(1, 2),
                   attention_resolutions=(8,), z_dim=32, head_channels=16, num_res_blocks=1, groups=8)
train = TrainConfig(total_samples=8 * 6, batch_size=8, lr=1e-3, warmup_samples=16, validate_every_samples=10_000,
                    validation_images=2, validation_steps=3, checkpoint_minutes=1e9, precision="fp32")
trainer = Trainer(config, train, torch.from_numpy(blob_images()), run_dir)
result = trainer.run(progress=False, max_minutes=0 if stop_rank0_early and trainer.rank == 0 else None)
total = float(sum(p.detach().double().sum() for p in trainer.model.parameters()))
(run_dir / f"rank{trainer.rank}.json").write_text(json.dumps({"step": trainer.step, "param_sum": total,
                                                              "world": trainer.world, **result}))
