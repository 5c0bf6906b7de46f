#!/bin/bash
# Sharded Ising Monte Carlo as a SLURM job array: one shard per array task, then one merge job.
#
#   sbatch --array=0-7 scripts/slurm_array.sh            # 8 shards of the recipe below
#   sbatch --dependency=afterok:<jobid> --wrap "physgan merge data/shards/L64_*.h5 --out data/L64.h5"
#
# Shard i of N uses the random stream SeedSequence(seed).spawn(N)[i] and stores 1/N of the
# configurations per temperature; `physgan merge` refuses shards of different runs or a missing shard.
# Other batch systems: HTCondor's $(Process) or PBS's $PBS_ARRAY_INDEX play the role of SLURM_ARRAY_TASK_ID.
# Jets: RECIPE=datasets/jets_lagan.toml sbatch --array=0-99 scripts/slurm_array.sh (then physgan merge the shards).
#SBATCH --job-name=physgan-mc
#SBATCH --cpus-per-task=2
#SBATCH --time=02:00:00
#SBATCH --output=logs/physgan-mc-%A_%a.out
set -euo pipefail

RECIPE=${RECIPE:-datasets/ising_L32.toml}
OUT_DIR=${OUT_DIR:-data/shards}
N_SHARDS=${SLURM_ARRAY_TASK_COUNT:?run as a job array: sbatch --array=0-7 $0}
I=${SLURM_ARRAY_TASK_ID:?run as a job array}

mkdir -p "$OUT_DIR" logs
export OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK:-2}
physgan simulate --recipe "$RECIPE" --shard "$I/$N_SHARDS" --quiet \
    --out "$OUT_DIR/$(basename "$RECIPE" .toml)_$(printf %04d "$I").h5"
