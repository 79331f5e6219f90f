// libarchive (Debian: libarchive-dev) reads layer tarballs and decompresses gzip/zstd streams.
#include <archive.h>
#include <archive_entry.h>
