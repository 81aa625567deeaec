"""The dataset health report: what is wrong with a topic or a file, and the paraphrase index."""
