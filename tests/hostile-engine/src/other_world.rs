//! A component of another world: it exports a `ping`, nothing of the
//! engine contract. A host refuses it before anything stops: it cannot be
//! instantiated as an engine.

wit_bindgen::generate!({
    inline: "package ivcs:hostile-other@0.1.0;\nworld other { export ping: func() -> u32; }",
    world: "other",
});

struct Other;

impl Guest for Other {
    fn ping() -> u32 {
        7
    }
}

export!(Other);
