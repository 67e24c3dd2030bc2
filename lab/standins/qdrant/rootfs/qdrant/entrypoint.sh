#!/bin/sh
# phoenix lab stand-in for Qdrant: NOT the real Qdrant (see lab/standins/qdrant/main.go).
exec /usr/local/bin/qdrant-standin "$@"
