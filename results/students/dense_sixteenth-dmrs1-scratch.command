deeprx train --profile cpu --model dense_sixteenth --steps 7500 --set link.dmrs_symbols=1 --set train.checkpoint_every=375 --out /work/main/results/students/dense_sixteenth-dmrs1-scratch --resume
