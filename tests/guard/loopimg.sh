# Sourced by the guard's tests, demo and benchmark: a loop-mounted ext4
# image of their own.  fanotify has no pre-content events on tmpfs, and a
# guard bug can then only stall writers to that image, never the root
# file system of the machine that runs them.
#   loop_image IMG MNT SIZE   make IMG of SIZE (e.g. 512M), ext4, mounted at MNT
#   loop_release MNT          unmount; lazily if a writer still holds it
loop_image() {
	truncate -s "$3" "$1" && mkfs.ext4 -q -F "$1" && mkdir -p "$2" &&
		mount -o loop "$1" "$2"
}
loop_release() {
	if mountpoint -q "$1"; then umount "$1" 2>/dev/null || umount -l "$1"; fi
}
