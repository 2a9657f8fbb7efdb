"""aiprep: interview prep in which every technical answer is a program that runs."""
