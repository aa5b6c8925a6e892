"""Knowledge base: loading, Chinese-aware chunking, embeddings, the hybrid index and search."""
