"""Building spoken-style data sets: simulated ASR noise, no-answer negatives, aligning answers
into real ASR transcripts, synthesizing and transcribing many recordings (process pool or Ray)."""
