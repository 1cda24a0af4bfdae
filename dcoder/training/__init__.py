"""Training the built-in model: the corpus, the tokenizer, the objective and the training loop."""
