#!/usr/bin/env bash
# The exact recipe that produced one4d/assets/embedded/ (times measured on a 2-core CPU shared with other work).
# Usage: bash scripts/train_embedded.sh [WORK_DIR]   then `one4d eval --model WORK_DIR` and copy
# WORK_DIR/{model.json,vae.safetensors,dit.safetensors,one4d.safetensors} to one4d/assets/embedded/
set -euo pipefail
W=${1:-runs/embedded}
one4d train data --work "$W"                                                     # 400 clips, ~13 s
one4d train vae --work "$W" --vae-steps 600                                      # RGB only, 5-frame windows, ~19 min
cp "$W/vae.safetensors" "$W/vae_rgb_only.safetensors"
one4d train vae --work "$W" --threads 2 --vae-steps 450 --vae-lr 1e-3 \
  --vae-pointmap-share 0.5 --vae-init "$W/vae_rgb_only.safetensors"             # + pointmaps, ~10 min
cp "$W/vae.safetensors" "$W/vae_w5_mixed.safetensors"
one4d train vae --work "$W" --threads 2 --vae-steps 250 --vae-batch 2 --vae-window 17 --vae-lr 1e-3 \
  --vae-pointmap-share 0.5 --vae-init "$W/vae_w5_mixed.safetensors"             # full 17-frame clips, ~8 min
one4d train encode --work "$W" --threads 2                                       # ~3.5 min
one4d train base --work "$W" --threads 2 --base-steps 1200                      # ~4.7 min
one4d train one4d --work "$W" --one4d-steps 1200 --batch 12                      # ~10 min
cp "$W/one4d.safetensors" "$W/one4d_1200.safetensors"
one4d train one4d --work "$W" --one4d-steps 1200 --batch 12 --one4d-lr 5e-4 --seed 14 \
  --one4d-init "$W/one4d_1200.safetensors"                                       # continued, ~11 min
cp "$W/one4d.safetensors" "$W/one4d_2400.safetensors"
# Decoder-only VAE fine-tuning, mostly on pointmaps: the encoder and latent statistics stay bit for bit, so
# the latents, the base DiT and the One4D weights above stay valid (~27 min per round on one core).
cp "$W/vae.safetensors" "$W/vae_round0.safetensors"
one4d train vae --work "$W" --vae-steps 600 --vae-batch 2 --vae-window 17 --vae-lr 2e-4 --vae-pointmap-share 0.8 \
  --vae-train decoder --vae-init "$W/vae_round0.safetensors"
cp "$W/vae.safetensors" "$W/vae_round1.safetensors"
one4d train vae --work "$W" --vae-steps 600 --vae-batch 2 --vae-window 17 --vae-lr 2e-4 --vae-pointmap-share 0.8 \
  --vae-train decoder --vae-init "$W/vae_round1.safetensors"
cp "$W/vae.safetensors" "$W/vae_round2.safetensors"
one4d train vae --work "$W" --vae-steps 400 --vae-batch 2 --vae-window 17 --vae-lr 2e-4 --vae-pointmap-share 0.8 \
  --vae-train decoder --vae-init "$W/vae_round2.safetensors"
# Longer One4D run from the 2,400-step weights (~80 min on one core beside the VAE rounds).
one4d train one4d --work "$W" --one4d-steps 8000 --batch 12 --one4d-lr 1e-3 --seed 34 --checkpoint-every 500 \
  --one4d-init "$W/one4d_2400.safetensors"
one4d train ablation --work "$W" --ablation-steps 300 --batch 12 --ablation-scenes 3 --eval-steps 20   # optional
