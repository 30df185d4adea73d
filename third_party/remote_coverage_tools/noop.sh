#!/bin/sh
# Offline stub: coverage post-processing is not available.
exit 0
