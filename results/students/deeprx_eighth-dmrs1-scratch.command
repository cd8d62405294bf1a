deeprx train --profile cpu --model deeprx_eighth --steps 2000 --set link.dmrs_symbols=1 --set train.checkpoint_every=100 --out /work/main/results/students/deeprx_eighth-dmrs1-scratch --resume
