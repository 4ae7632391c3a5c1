#!/usr/bin/env bash
# The recipe of the shipped embedded model, v3d (one4d/training/recipe.py), stage by stage, with the times measured
# on a 2-core CPU (docs/embedded.md): v2.3 first (4x-stride VAE of width 32, DiT 128 wide x 8 blocks, One4D rank 16,
# grown to rank 64 with links at every block, then trained on at a lower rate), then v3: the residual VAE in its own
# work folder (WORK_DIR/v3), v2.3's DiT and adapters carried into its latents and trained on (v3a, v3c, v3d).
# Usage: bash scripts/train_embedded.sh [WORK_DIR]   then `one4d eval --model WORK_DIR/v3 --json > new.json`,
# `one4d eval --compare shipped.json new.json`, and copy WORK_DIR/v3/{model.json,vae,dit,one4d}.safetensors to
# one4d/assets/embedded/ if it wins. Every stage resumes when rerun after an interruption (--time-limit too).
set -euo pipefail
W=${1:-runs/embedded}
VAE_MIX=(--vae-clip 1.0 --vae-pointmap-share 0.5 --vae-photo-share 0.2 --vae-validate-scenes 4)
one4d train data --work "$W"                                                        # 400 clips, 23 s
# VAE phase 1: 5-frame windows of 16 x 16 crops learn the codec fastest per CPU minute          (~58 min)
one4d train vae --work "$W" --threads 2 --vae-steps 6000 --vae-batch 8 --vae-window 5 --vae-crop 16 \
  --vae-lr 1e-3 --checkpoint-every 1000 --vae-arch plain "${VAE_MIX[@]}"
cp "$W/vae.safetensors" "$W/vae_phase1.safetensors"
# phase 2: full 17-frame clips train the causal cache across chunks                             (~25 min)
one4d train vae --work "$W" --threads 2 --vae-steps 700 --vae-batch 4 --vae-window 17 --vae-crop 32 \
  --vae-lr 3e-4 --checkpoint-every 175 --vae-init "$W/vae_phase1.safetensors" "${VAE_MIX[@]}"
cp "$W/vae.safetensors" "$W/vae_phase2.safetensors"
# phase 3: 1,000 more full-clip steps in bf16                                     (~42 min of one thread)
one4d train vae --work "$W" --threads 2 --precision bf16 --vae-steps 1000 --vae-batch 4 --vae-window 17 \
  --vae-crop 32 --vae-lr 3e-4 --checkpoint-every 250 --vae-init "$W/vae_phase2.safetensors" "${VAE_MIX[@]}"
one4d train encode --work "$W" --threads 2                                          # ~8 min
one4d train base --work "$W" --threads 2 --precision bf16 --base-steps 1200 --batch 16   # ~22 min
one4d train one4d --work "$W" --threads 2 --precision bf16 --one4d-steps 1200 --batch 12 --one4d-lr 1e-3 \
  --checkpoint-every 400                                                           # ~30 min
cp "$W/one4d.safetensors" "$W/one4d_1200.safetensors"
# One4D continued from the 1,200-step weights                                                 (~85 min)
one4d train one4d --work "$W" --threads 2 --precision bf16 --one4d-steps 3600 --batch 12 --one4d-lr 1e-3 \
  --checkpoint-every 600 --one4d-init "$W/one4d_1200.safetensors"
cp "$W/one4d.safetensors" "$W/one4d_4800.safetensors"
cp "$W/vae.safetensors" "$W/vae_phase3.safetensors"
# v2.1: the decoder alone; the encoder and its latent space stay, so cache, base and One4D stay valid
one4d train vae --work "$W" --threads 2 --precision bf16 --vae-train decoder --vae-steps 2000 --vae-batch 4 \
  --vae-window 17 --vae-crop 32 --vae-lr 3e-4 --checkpoint-every 500 --vae-init "$W/vae_phase3.safetensors" \
  "${VAE_MIX[@]}"                                                                  # ~61 min of one thread
# v2.1: One4D continued from the 4,800-step weights with batches and noise the first run did not draw
one4d train one4d --work "$W" --threads 2 --precision bf16 --one4d-steps 2000 --batch 12 --one4d-lr 1e-3 \
  --checkpoint-every 500 --seed 11 --one4d-init "$W/one4d_4800.safetensors"        # ~78 min of one thread
cp "$W/one4d.safetensors" "$W/one4d_6800.safetensors"
# v2.2: the adapters grown to rank 64 and links at all 8 blocks (the grown model starts where v2.1 is)
one4d train one4d --work "$W" --threads 2 --precision bf16 --one4d-steps 2000 --batch 12 --one4d-lr 1e-3 \
  --checkpoint-every 500 --seed 12 --rank 64 --links 8 --one4d-init "$W/one4d_6800.safetensors"  # ~89 min of one thread
cp "$W/one4d.safetensors" "$W/one4d_8800.safetensors"
# v2.3: 1,800 more steps at a third of the peak rate (a restart at 1e-3 spends its first 1,000 steps recovering)
one4d train one4d --work "$W" --threads 2 --precision bf16 --one4d-steps 1800 --batch 12 --one4d-lr 3e-4 \
  --checkpoint-every 450 --seed 13 --rank 64 --links 8 --one4d-init "$W/one4d_8800.safetensors"  # ~80 min of one thread
cp "$W/one4d.safetensors" "$W/one4d_v23.safetensors"
# v3: the residual VAE (Wan2.2-style parameter-free shortcuts around each down and up block), a new latent space,
# trained in its own work folder on the same 400 clips; the base DiT and the adapters are carried from v2.3
V="$W/v3"
mkdir -p "$V" && cp "$W/data.npz" "$V/"
one4d train vae --work "$V" --threads 2 --precision bf16 --vae-arch residual --vae-steps 6000 --vae-batch 8 \
  --vae-window 5 --vae-crop 16 --vae-lr 1e-3 --checkpoint-every 1000 "${VAE_MIX[@]}"   # ~40 min of one thread
cp "$V/vae.safetensors" "$V/vae_phase1.safetensors"
one4d train vae --work "$V" --threads 2 --precision bf16 --vae-steps 700 --vae-batch 4 --vae-window 17 --vae-crop 32 \
  --vae-lr 3e-4 --checkpoint-every 350 --vae-init "$V/vae_phase1.safetensors" "${VAE_MIX[@]}"   # ~26 min
cp "$V/vae.safetensors" "$V/vae_phase2.safetensors"
one4d train vae --work "$V" --threads 2 --precision bf16 --vae-steps 3000 --vae-batch 4 --vae-window 17 --vae-crop 32 \
  --vae-lr 3e-4 --checkpoint-every 500 --seed 21 --vae-init "$V/vae_phase2.safetensors" \
  "${VAE_MIX[@]}" --vae-photo-share 0.4          # twice the photo share (the last value given wins); ~115 min of one thread
one4d train encode --work "$V" --threads 2                                          # ~15 min
one4d train base --work "$V" --threads 2 --precision bf16 --base-steps 1200 --batch 16 --checkpoint-every 400 \
  --base-init "$W/dit.safetensors" --base-init-vae "$W/vae.safetensors"             # ~25 min: v2.3's DiT carried by a rotation
one4d train one4d --work "$V" --threads 2 --precision bf16 --one4d-steps 2400 --batch 12 --one4d-lr 1e-3 \
  --checkpoint-every 500 --seed 14 --rank 64 --links 8 --one4d-init "$W/one4d_v23.safetensors"   # v3a, ~60 min
cp "$V/one4d.safetensors" "$V/one4d_v3a.safetensors"
one4d train one4d --work "$V" --threads 2 --precision bf16 --one4d-steps 1800 --batch 12 --one4d-lr 3e-4 \
  --checkpoint-every 450 --seed 15 --rank 64 --links 8 --one4d-init "$V/one4d_v3a.safetensors"   # v3c, ~45 min
cp "$V/one4d.safetensors" "$V/one4d_v3c.safetensors"
# v3d (shipped): more text-only and single-image tasks in the mix, where v3c fell behind v2.3
one4d train one4d --work "$V" --threads 2 --precision bf16 --one4d-steps 2000 --batch 12 --one4d-lr 3e-4 \
  --checkpoint-every 500 --seed 17 --rank 64 --links 8 --task-mix image=0.35,sparse=0.2,video=0.2,text=0.25 \
  --one4d-init "$V/one4d_v3c.safetensors"                                          # ~44 min
