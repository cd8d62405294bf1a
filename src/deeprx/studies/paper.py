"""The DeepRx KD paper's numbers, quoted beside ours in the claims table (never used to compute ours)."""

PAPER = {
    "kd_gain_db": 4.0,
    "kd_gain_target_ber": 1e-3,
    "coral_mj": 2.0,
    "break_even_inferences": 1e5,
    "train_step_joules": 20.0,
    "train_steps": 250_000,
    "best_alpha": 5e5,
    "best_temperature": 3.0,
}
