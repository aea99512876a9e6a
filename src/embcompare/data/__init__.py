"""Getting the data: fetch files, read datasets and corpora, tokenise."""
