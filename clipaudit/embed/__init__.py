"""The embedding engine: image and text embeddings, computed once and cached on disk."""
from clipaudit.embed.engine import ImageEmbeddings, embed_images, embed_texts, image_cache_path, text_cache_path

__all__ = ["ImageEmbeddings", "embed_images", "embed_texts", "image_cache_path", "text_cache_path"]
