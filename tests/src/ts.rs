//! MPEG-TS structure checks that ffmpeg is too lenient to report: whole
//! 188-byte packets, sync bytes, and a PAT before the first PES so that every
//! segment can be demuxed on its own.

/// Checks the packet structure of one TS segment.
pub fn check_segment(data: &[u8]) -> Result<(), String> {
    if data.is_empty() || !data.len().is_multiple_of(188) {
        return Err(format!(
            "{} bytes is not a whole number of 188-byte TS packets",
            data.len()
        ));
    }
    let mut pat_seen = false;
    for (i, pkt) in data.chunks_exact(188).enumerate() {
        if pkt[0] != 0x47 {
            return Err(format!("TS packet {i} has sync byte {:#04x}", pkt[0]));
        }
        let pusi = pkt[1] & 0x40 != 0;
        let pid = (u16::from(pkt[1] & 0x1F) << 8) | u16::from(pkt[2]);
        if pid == 0 {
            pat_seen = true;
            continue;
        }
        let afc = (pkt[3] >> 4) & 3;
        let start = match afc {
            1 => 4,
            3 => 5 + usize::from(pkt[4]),
            _ => continue,
        };
        let is_pes_start = pusi && pkt.get(start..start + 3) == Some(&[0, 0, 1][..]);
        if is_pes_start && !pat_seen {
            return Err(format!(
                "PES starts in TS packet {i} (PID {pid:#x}) before any PAT"
            ));
        }
    }
    if pat_seen {
        Ok(())
    } else {
        Err("no PAT".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(pid: u16, pusi: bool, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![
            0x47,
            (pid >> 8) as u8 | if pusi { 0x40 } else { 0 },
            pid as u8,
            0x10,
        ];
        p.extend_from_slice(payload);
        p.resize(188, 0xFF);
        p
    }

    #[test]
    fn requires_pat_before_pes() {
        let mut good = pkt(0, true, &[0]);
        good.extend(pkt(0x100, true, &[0, 0, 1, 0xE0]));
        check_segment(&good).unwrap();
        let mut bad = pkt(0x100, true, &[0, 0, 1, 0xE0]);
        bad.extend(pkt(0, true, &[0]));
        assert!(check_segment(&bad).is_err());
        assert!(check_segment(&good[..187]).is_err());
    }
}
