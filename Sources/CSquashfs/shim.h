// libsquashfs from squashfs-tools-ng (Debian: libsquashfs-dev) writes the image file.
#include <sqfs/predef.h>
#include <sqfs/block.h>
#include <sqfs/block_processor.h>
#include <sqfs/block_writer.h>
#include <sqfs/compressor.h>
#include <sqfs/dir.h>
#include <sqfs/dir_writer.h>
#include <sqfs/error.h>
#include <sqfs/frag_table.h>
#include <sqfs/id_table.h>
#include <sqfs/inode.h>
#include <sqfs/io.h>
#include <sqfs/meta_writer.h>
#include <sqfs/super.h>
#include <sqfs/table.h>
#include <sqfs/xattr.h>
#include <sqfs/xattr_writer.h>
