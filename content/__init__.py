"""Content (内容): short-video pipeline, talk-script libraries, doctor lectures,
live streams and communities."""
