"""Content domain (内容): video recipes, subtitles and the ffmpeg filter-graph builder. Standard library only."""
