// Translation unit that carries the shared precompiled header (harness/core/pch.h).
