// MathJax 2.7 settings, read by assets/mathjax/MathJax.js (which this site serves itself, from
// the jupyter-server-mathjax package). The tutorials write $...$ and $$...$$ as Jupyter does;
// Markdown pages use pymdownx.arithmatex.
window.MathJax = {
  config: ["TeX-AMS-MML_HTMLorMML-full.js"],  // what Jupyter loads: TeX input, HTML-CSS output
  TeX: { equationNumbers: { autoNumber: "AMS" } },
  tex2jax: {
    inlineMath: [["$", "$"], ["\\(", "\\)"]],
    displayMath: [["$$", "$$"], ["\\[", "\\]"]],
    processEscapes: true,
    processEnvironments: true,
    // API docstrings (mkdocstrings' .doc blocks) are not TeX: "$KERAS_HOME ... $" stays text.
    ignoreClass: "tex2jax_ignore|doc",
  },
  "HTML-CSS": {
    availableFonts: ["STIX-Web"],  // the web fonts shipped in assets/mathjax/fonts
    preferredFont: "STIX-Web",
    webFont: "STIX-Web",
    imageFont: null,  // no image fonts are shipped
  },
  messageStyle: "none",
  AuthorInit: function () {
    // The hidden MathML for screen readers (AssistiveMML) is styled by the NativeMML output,
    // whose @font-face rules point at MathJax's TeX .otf fonts, which the package does not ship
    // (Jupyter gets a 404 there too). Drop those rules: the hidden text needs no web font.
    MathJax.Hub.Register.StartupHook("NativeMML Jax Config", function () {
      var styles = MathJax.OutputJax.NativeMML.config.styles;
      for (var key in styles) {
        if (key.indexOf("@font-face") === 0) delete styles[key];
      }
    });
    // Collected for the browser test (tests/docs): a formula that fails to typeset.
    window.mathjaxErrors = [];
    MathJax.Hub.Register.MessageHook("TeX Jax - parse error", function (message) {
      window.mathjaxErrors.push(String(message[1]));
    });
    MathJax.Hub.Register.MessageHook("Math Processing Error", function (message) {
      window.mathjaxErrors.push(String(message[2] || message[1]));
    });
  },
};
