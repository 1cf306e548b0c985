"""The embedding engine: image and text embeddings, computed once and cached on disk in shards."""
from clipaudit.embed.engine import ImageEmbeddings, embed_images, embed_texts, image_cache_folder, text_cache_path
from clipaudit.embed.lazy_model import LazyModel, open_model
from clipaudit.embed.shards import SHARD_IMAGES, Part, parse_part

__all__ = ["ImageEmbeddings", "LazyModel", "Part", "SHARD_IMAGES", "embed_images", "embed_texts",
           "image_cache_folder", "open_model", "parse_part", "text_cache_path"]
