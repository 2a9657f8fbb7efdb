"""Speech: sequence models trained on unaligned transcripts."""
