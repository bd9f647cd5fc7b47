"""Changing servers that exist (resize, replace, prune, start); finishing what runs began."""
