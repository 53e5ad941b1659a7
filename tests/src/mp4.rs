//! A minimal ISO-BMFF box walker: the top-level layout of a self-contained
//! fMP4 segment (ftyp, moov, then moof/mdat pairs) and the codec string of
//! the video sample entry (avcC / hvcC), checked independently of ffmpeg.

use crate::annexb;

/// One box: its type and where it sits in the buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mp4Box {
    /// Four-character type, e.g. `moov`.
    pub kind: String,
    /// Offset of the box header in the buffer.
    pub offset: usize,
    /// Total size including the header.
    pub size: usize,
    /// Header length (8, or 16 with a 64-bit size).
    pub header: usize,
}

impl Mp4Box {
    /// The payload (after the header) within `data`, the buffer the box was
    /// read from.
    pub fn payload<'a>(&self, data: &'a [u8]) -> &'a [u8] {
        &data[self.offset + self.header..self.offset + self.size]
    }
}

/// The sequence of boxes in `data` at one level; an error if they do not
/// tile it exactly.
pub fn boxes(data: &[u8]) -> Result<Vec<Mp4Box>, String> {
    let mut out = Vec::new();
    let mut off = 0usize;
    while off < data.len() {
        let rest = &data[off..];
        if rest.len() < 8 {
            return Err(format!("{} stray bytes at offset {off}", rest.len()));
        }
        let size32 = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let kind = String::from_utf8_lossy(&rest[4..8]).into_owned();
        let (size, header) = match size32 {
            0 => (rest.len(), 8),
            1 => {
                if rest.len() < 16 {
                    return Err(format!("truncated large-size box `{kind}` at offset {off}"));
                }
                let mut b = [0u8; 8];
                b.copy_from_slice(&rest[8..16]);
                (u64::from_be_bytes(b) as usize, 16)
            }
            n => (n, 8),
        };
        if size < header || size > rest.len() {
            return Err(format!(
                "box `{kind}` at offset {off} has size {size}, {} bytes remain",
                rest.len()
            ));
        }
        out.push(Mp4Box {
            kind,
            offset: off,
            size,
            header,
        });
        off += size;
    }
    Ok(out)
}

/// The payload of the first box named `kind` directly inside `data`.
pub fn child<'a>(data: &'a [u8], kind: &str) -> Option<&'a [u8]> {
    boxes(data)
        .ok()?
        .into_iter()
        .find(|b| b.kind == kind)
        .map(|b| b.payload(data))
}

/// Follows a path of box types from `data` (e.g. `["moov", "trak"]`).
pub fn path<'a>(data: &'a [u8], kinds: &[&str]) -> Option<&'a [u8]> {
    kinds.iter().try_fold(data, |d, k| child(d, k))
}

/// The video sample entry of an init segment (ftyp+moov...): its fourcc
/// (`avc1`, `avc3`, `hvc1`, `hev1`) and the codec string built from its
/// avcC/hvcC with that fourcc as prefix.
pub fn video_sample_entry(init: &[u8]) -> Result<(String, String), String> {
    let moov = child(init, "moov").ok_or("no moov box")?;
    let traks: Vec<&[u8]> = boxes(moov)?
        .into_iter()
        .filter(|b| b.kind == "trak")
        .map(|b| b.payload(moov))
        .collect();
    for trak in traks {
        let Some(hdlr) = path(trak, &["mdia", "hdlr"]) else {
            continue;
        };
        if hdlr.get(8..12) != Some(b"vide") {
            continue;
        }
        let stsd =
            path(trak, &["mdia", "minf", "stbl", "stsd"]).ok_or("video trak without stsd")?;
        // FullBox header (4) + entry_count (4), then the sample entries.
        let entries = stsd.get(8..).ok_or("short stsd")?;
        let entry = boxes(entries)?.into_iter().next().ok_or("empty stsd")?;
        // VisualSampleEntry: 6 reserved + 2 data_reference_index + 70 bytes
        // of fields, then child boxes.
        let body = entry
            .payload(entries)
            .get(78..)
            .ok_or("short visual sample entry")?;
        let fourcc = entry.kind.clone();
        let s = match fourcc.as_str() {
            "avc1" | "avc3" => {
                let c = child(body, "avcC").ok_or("no avcC")?;
                if c.len() < 4 {
                    return Err("short avcC".into());
                }
                annexb::avc_codec_string(c[1], c[2], c[3]).replacen("avc1", &fourcc, 1)
            }
            "hvc1" | "hev1" => {
                let c = child(body, "hvcC").ok_or("no hvcC")?;
                if c.len() < 13 {
                    return Err("short hvcC".into());
                }
                annexb::hevc_codec_string(
                    c[1] >> 6,
                    c[1] & 0x20 != 0,
                    c[1] & 0x1F,
                    u32::from_be_bytes([c[2], c[3], c[4], c[5]]),
                    [c[6], c[7], c[8], c[9], c[10], c[11]],
                    c[12],
                )
                .replacen("hvc1", &fourcc, 1)
            }
            other => return Err(format!("unexpected video sample entry `{other}`")),
        };
        return Ok((fourcc, s));
    }
    Err("no video trak".into())
}

/// Checks the layout of a self-contained fMP4 segment: `ftyp`, `moov`
/// (together exactly `init_bytes` long), then only fragment-level boxes with
/// at least one `moof` followed by an `mdat`, tiling the file exactly.
pub fn check_segment_layout(data: &[u8], init_bytes: usize) -> Result<(), String> {
    let b = boxes(data)?;
    let kinds: Vec<&str> = b.iter().map(|x| x.kind.as_str()).collect();
    if kinds.len() < 4 || kinds[0] != "ftyp" || kinds[1] != "moov" {
        return Err(format!(
            "top-level boxes are {kinds:?}, expected ftyp, moov, moof, mdat..."
        ));
    }
    let init = b[0].size + b[1].size;
    if init != init_bytes {
        return Err(format!(
            "ftyp+moov are {init} bytes, index.json says init_bytes {init_bytes}"
        ));
    }
    let allowed = [
        "styp", "sidx", "prft", "emsg", "moof", "mdat", "free", "skip", "mfra",
    ];
    if let Some(bad) = kinds[2..].iter().find(|k| !allowed.contains(k)) {
        return Err(format!(
            "unexpected box `{bad}` after the init section: {kinds:?}"
        ));
    }
    let first_moof = kinds.iter().position(|k| *k == "moof");
    match first_moof {
        Some(i) if kinds[i + 1..].contains(&"mdat") => Ok(()),
        _ => Err(format!("no moof followed by mdat: {kinds:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bx(kind: &str, payload: &[u8]) -> Vec<u8> {
        let mut v = ((payload.len() + 8) as u32).to_be_bytes().to_vec();
        v.extend_from_slice(kind.as_bytes());
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn walks_and_checks_layout() {
        let mut seg = bx("ftyp", b"isom");
        seg.extend(bx("moov", &bx("mvhd", &[0; 4])));
        let init = seg.len();
        seg.extend(bx("moof", &[]));
        seg.extend(bx("mdat", &[1, 2, 3]));
        assert_eq!(boxes(&seg).unwrap().len(), 4);
        assert!(path(&seg, &["moov", "mvhd"]).is_some());
        check_segment_layout(&seg, init).unwrap();
        assert!(check_segment_layout(&seg, init + 1).is_err());
        seg.push(0);
        assert!(boxes(&seg).is_err());
    }
}
