export * from "./registry";
export * from "./modelRepository";
export * from "./privateRepository";
export * from "./localRegistry";
export * from "./modelImage";
export * from "./tagGuard";
export * from "./promotedImage";
export * from "./publicationRecord";
