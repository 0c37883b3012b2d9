//! Rebuild when the partition table changes (the OTA code reads it from flash at run time,
//! but the image's size limit follows from it).

fn main() {
    println!("cargo:rerun-if-changed=partitions.csv");
}
