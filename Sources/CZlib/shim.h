// zlib (Debian: zlib1g-dev): deflate for PNG, gzip for data sets.
#include <zlib.h>
